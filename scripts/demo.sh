#!/usr/bin/env bash
# make demo: a guided tour of rbox (and a glimpse of rrun under it), with
# nothing from the internet. A busybox image is made from Debian's
# busybox-static, imported into a throw-away store, and served by httpd with
# a published port and a bind mount. Every command is printed before it runs.
# Everything the demo makes is removed on exit, even when it fails or is
# interrupted: containers, mounts, the store, the containers' cgroup parent
# (/rbox-demo-PID), and the default bridge rbox0, its address leases and the
# nft table rcni when they did not exist before.
# Needs root. RRUN, RBOX, SHIM and CNI_BIN_DIR name the binaries (make demo
# passes the freshly built ones); DEMO_PORT the host port (default 18080).
set -euo pipefail
rrun_bin=${RRUN:-rrun}
rbox_bin=${RBOX:-rbox}
export RBOX_RUNTIME=${RRUN:-$(command -v rrun || echo rrun)}
export RBOX_SHIM=${SHIM:-$(command -v containerd-shim-rrun-v2 || echo containerd-shim-rrun-v2)}
export RBOX_CNI_PATH=${CNI_BIN_DIR:-/usr/local/lib/cni:/usr/lib/cni}
# the containers' cgroups go under a parent of the demo's own, removed on exit
export RBOX_CGROUP_PARENT=/rbox-demo-$$
. "$(dirname "$0")/cgroup-parent.sh"
port=${DEMO_PORT:-18080}
names=(demo-web demo-hello)

[ "$(id -u)" = 0 ] || { echo "demo.sh runs real containers: run it as root" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "busybox-static is not installed (make deps)" >&2; exit 1; }

# What exists before the demo, so that cleanup removes only what it made.
had_bridge=0; ip link show rbox0 >/dev/null 2>&1 && had_bridge=1
had_leases=0; [ -e /var/lib/cni/networks/rbox ] && had_leases=1
had_rcni=0; nft list table ip rcni >/dev/null 2>&1 && had_rcni=1
# directories rbox makes on first use: removed again if the demo made them
# and nothing else is in them
made_dirs=()
for d in /run/netns /var/lib/cni /var/lib/cni/networks /run/containerd /run/containerd/s; do
  [ -e "$d" ] || made_dirs+=("$d")
done

work=$(mktemp -d /tmp/rbox-demo.XXXXXX)
store=$work/store

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  echo
  echo "== cleaning up"
  if [ -d "$store" ]; then
    ids=$(ls "$store/containers" 2>/dev/null)
    for c in "${names[@]}"; do "$rbox_bin" --root "$store" rm -f "$c" >/dev/null 2>&1; done
    # a shim left behind by an interrupted `rbox run` (its command line has the container id)
    for id in $ids; do
      for p in $(pgrep -f -- "containerd-shim-rrun-v2 .*-id $id"); do kill -KILL "$p"; done
    done
  fi
  "$rrun_bin" --root "$work/rrun" delete --force demo-rrun >/dev/null 2>&1
  # container root filesystems (overlay) and bind mounts under the work dir, innermost first
  findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
  if [ "$had_bridge" = 0 ] && ip link show rbox0 >/dev/null 2>&1; then ip link del rbox0; fi
  if [ "$had_leases" = 0 ]; then rm -rf /var/lib/cni/networks/rbox; fi
  if [ "$had_rcni" = 0 ] && nft list table ip rcni >/dev/null 2>&1; then nft delete table ip rcni; fi
  # innermost first; a directory something else uses now stays
  for ((i = ${#made_dirs[@]} - 1; i >= 0; i--)); do
    d=${made_dirs[$i]}
    if [ -d "$d" ] && ! mountpoint -q "$d"; then rmdir "$d" 2>/dev/null; fi
  done
  rmdir_cgroup "$RBOX_CGROUP_PARENT" || rc=1
  if [ "$rc" = 0 ]; then echo "== done: nothing left behind"; else echo "== demo FAILED (exit $rc)" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Print a command the way a user would type it, then run it.
show() {
  local out="" a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
  done
  printf '\n$%s\n' "$out"
}
rbox() { show rbox "$@"; "$rbox_bin" --root "$store" "$@"; }

echo "== 1. rrun, the OCI runtime: a busybox bundle run directly"
RRUN=$rrun_bin "$(dirname "$0")/busybox-bundle.sh" "$work/bundle" \
  sh -c 'echo "hostname $(hostname), pid $$ in its own pid namespace, $(id)"; ps'
show rrun run --bundle "$work/bundle" demo-rrun
"$rrun_bin" --root "$work/rrun" run --bundle "$work/bundle" demo-rrun

echo
echo "== 2. rbox, the Docker-like manager (every rbox command here uses --root $store,"
echo "==    a throw-away store: /var/lib/rbox is not touched)"
rootfs=$work/bundle/rootfs
mkdir -p "$rootfs/www"
echo '<h1>busybox httpd inside the image</h1>' >"$rootfs/www/index.html"
show tar -C "$rootfs" -cf "$work/bb.tar" .
tar -C "$rootfs" -cf "$work/bb.tar" .
rbox import "$work/bb.tar" demo/busybox
rbox images

echo
echo "== a web server: port 80 of the container published on 127.0.0.1:$port,"
echo "== and a host directory mounted read-only over the image's /www"
mkdir -p "$work/www"
echo "<h1>Hello from $work/www on the host, served by rbox</h1>" >"$work/www/index.html"
rbox run -d --name demo-web -p "$port:80" -v "$work/www:/www:ro" demo/busybox httpd -f -v -p 80 -h /www

# GET / on the published port: curl when installed, else bash's /dev/tcp
# (Debian's minimal install has no curl). httpd may need a moment to listen.
http_get() {
  if command -v curl >/dev/null; then
    curl -fsS "http://127.0.0.1:$port/"
  else
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    sed '1,/^\r$/d' <&3
    exec 3<&-
  fi
}
show curl "http://127.0.0.1:$port/"
for i in $(seq 50); do
  if page=$(http_get 2>/dev/null) && [ -n "$page" ]; then break; fi
  [ "$i" = 50 ] && { echo "no answer on 127.0.0.1:$port" >&2; exit 1; }
  sleep 0.1
done
echo "$page"
grep -q "Hello from $work/www" <<<"$page" || { echo "unexpected page" >&2; exit 1; }

rbox ps
rbox inspect --format '{{.NetworkSettings.IPAddress}}' demo-web
rbox exec demo-web sh -c 'hostname; ip -4 addr show eth0; ps'
echo "a note copied from the host" >"$work/note.txt"
rbox cp "$work/note.txt" demo-web:/tmp/note.txt
rbox exec demo-web cat /tmp/note.txt
rbox cp demo-web:/etc/passwd "$work/passwd"
show cat "$work/passwd"
cat "$work/passwd"
rbox logs demo-web

echo
echo "== a one-shot container removed when it exits"
rbox run --rm --name demo-hello demo/busybox sh -c 'echo "hello from $(hostname), $(id -un)"'

echo
echo "== stopping and removing the web server (httpd, PID 1 of its container, ignores TERM:"
echo "== rbox stop sends KILL after the 2 s timeout, hence the exit code 137)"
rbox stop -t 2 demo-web
rbox ps -a
rbox rm demo-web
rbox ps -a
