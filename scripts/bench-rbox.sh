#!/usr/bin/env bash
# Part of `make bench`: rbox vs Podman vs Docker on the same busybox image.
# Usage: scripts/bench-rbox.sh WORK RBOX RUNS
# Times, each in one hyperfine call (side by side):
#   run:  `run --rm IMAGE true` on the default bridge network and with --network none
#   exec: `exec CTR true` into a detached container running sleep
#   ps:   `ps` with 50, then 200 detached containers running (rbox only)
# and reads the memory (VmRSS, Pss) of the process that supervises one idle
# detached container: rbox's containerd-shim-rrun-v2, Podman's conmon,
# Docker's containerd-shim-runc-v2.
# Writes WORK/rbox-run.json, WORK/rbox-exec.json, WORK/rbox-ps-50.json,
# WORK/rbox-ps-200.json (hyperfine) and WORK/rbox-mem.json (memory,
# versions, why an engine is left out).
#
# Every engine is private to this run:
# - rbox: --root under WORK, the shim, rrun and CNI plugins of this tree
#   (RBOX_SHIM, RBOX_RUNTIME, RBOX_CNI_PATH; SHIM, RRUN, CNI_BIN_DIR override);
#   its default bridge rbox0 (10.88.0.0/16); its containers' cgroups under
#   /rbox-bench-PID (RBOX_CGROUP_PARENT).
# - podman: --root/--runroot under WORK, a private containers.conf
#   (CONTAINERS_CONF) whose default network is rbox-bench-podman on
#   10.89.246.0/24 (Podman's own default, 10.88.0.0/16, is rbox0's), runc.
# - docker: a private dockerd (data and exec root, socket, pid file under
#   WORK; its own managed containerd) on a bridge this script makes,
#   rbench-dk0 with 10.89.247.0/24; its iptables rules as by default (the
#   FORWARD policy is left alone: --ip-forward=false).
# The image: /bin/busybox of busybox-static, `rbox import`ed, then
# `rbox save`d as a docker-archive that `podman load` and `docker load` read.
# On exit everything is removed: containers, daemons, shims, conmons, mounts
# under WORK, the bridges, address leases, CNI caches, nf_tables tables and
# iptables chains, cgroups and the directories the engines made that did not
# exist before.
set -euo pipefail
work=$1 rbox=$2 runs=${3:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/proc-mem.sh"
musl=$here/target/$(uname -m)-unknown-linux-musl/release
export RBOX_RUNTIME=${RRUN:-$musl/rrun}
export RBOX_SHIM=${SHIM:-$musl/containerd-shim-rrun-v2}
export RBOX_CNI_PATH=${CNI_BIN_DIR:-$musl}
# the containers' cgroups go under a parent of this run's own, removed on exit
export RBOX_CGROUP_PARENT=/rbox-bench-$$
. "$here/scripts/cgroup-parent.sh"
d=$work/rbox-bench
mkdir -p "$d"
image=rbox-bench/busybox:latest
rb() { "$rbox" --root "$d/rbox" "$@"; }

pm_net=rbox-bench-podman pm_subnet=10.89.246.0/24
dk_bridge=rbench-dk0 dk_gw=10.89.247.1/24
export CONTAINERS_CONF=$d/containers.conf
pm() { podman --root "$d/pm-root" --runroot "$d/pm-run" "$@"; }
dk_sock=$d/docker.sock
dk() { DOCKER_HOST=unix://$dk_sock "$docker_client" "$@"; }
notes=()

# --- what exists before, so that cleanup removes only what this run made --------
exists() { [ -e "$1" ] && echo 1 || echo 0; }
link_exists() { ip link show "$1" >/dev/null 2>&1 && echo 1 || echo 0; }
had_rbox0=$(link_exists rbox0)
had_podman0=$(link_exists cni-podman0)
had_leases=$(exists /var/lib/cni/networks/rbox)
had_pm_leases=$(exists /var/lib/cni/networks/$pm_net)
had_cni_results=$(exists /var/lib/cni/results)
had_run_docker=$(exists /run/docker)
had_run_containerd=$(exists /run/containerd)
had_key=$(exists /etc/docker/key.json)
had_etc_docker=$(exists /etc/docker)
tables_before=$(nft list tables 2>/dev/null || true)
ipt_before=$( { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null; } | sed -n 's/^:\([^ ]*\).*/\1/p' | sort -u)
cgroups_before=$(ls -d /sys/fs/cgroup/*/docker /sys/fs/cgroup/*/libpod_parent 2>/dev/null || true)
ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
bridge_nf=$(for f in /proc/sys/net/bridge/bridge-nf-call-ip*tables; do [ -e "$f" ] && echo "$f=$(cat "$f")"; done)

dockerd_pid=
cleanup() {
  set +e
  # rbox: every container of the private store (their shims exit with them)
  if [ -d "$d/rbox" ]; then
    ids=$(ls "$d/rbox/containers" 2>/dev/null)
    for id in $ids; do rb rm -f "$id" >/dev/null 2>&1; done
    for id in $ids; do
      for p in $(pgrep -f -- "containerd-shim-rrun-v2 .*-id $id"); do kill -KILL "$p"; done
    done
  fi
  # podman: containers (conmon, CNI DEL), images
  if [ -d "$d/pm-root" ]; then
    pm rm -a -f -t 0 >/dev/null 2>&1
    pm rmi -a -f >/dev/null 2>&1
    for p in $(pgrep -f -- "conmon .*-b $d/pm-root/"); do kill -KILL "$p"; done
  fi
  # docker: containers, then the daemon with its containerd and shims
  if [ -n "$dockerd_pid" ]; then
    dk rm -f $(dk ps -aq 2>/dev/null) >/dev/null 2>&1
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$dockerd_pid" 2>/dev/null
    wait "$dockerd_pid" 2>/dev/null
    for p in $(pgrep -f -- "containerd.* $d/docker-exec/"); do kill -KILL "$p"; done
  fi
  # container root filesystems, shm, network namespaces under WORK, innermost first
  findmnt -rn -o TARGET | grep -F "$d/" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$d"
  # networks
  [ "$had_rbox0" = 1 ] || ip link del rbox0 2>/dev/null
  [ "$had_podman0" = 1 ] || ip link del cni-podman0 2>/dev/null
  ip link del "$dk_bridge" 2>/dev/null
  [ "$had_leases" = 1 ] || rm -rf /var/lib/cni/networks/rbox
  [ "$had_pm_leases" = 1 ] || rm -rf "/var/lib/cni/networks/$pm_net"
  [ "$had_cni_results" = 1 ] || rm -rf /var/lib/cni/results
  # nf_tables tables (rbox's rcni; iptables-nft's tables the CNI plugins of
  # podman made), or only the CNI chains when the table was there before
  for t in "ip rcni" "ip nat" "ip filter" "ip6 nat" "ip6 filter"; do
    grep -qx "table $t" <<<"$tables_before" && continue
    nft list table $t >/dev/null 2>&1 && nft delete table $t
  done
  for cmd in iptables ip6tables; do
    command -v $cmd >/dev/null || continue
    for tb in filter nat; do
      $cmd-save -t $tb 2>/dev/null | grep -q . || continue
      # rules of the bridges this run made (Docker's masquerade and forward rules)
      $cmd-save -t $tb 2>/dev/null | grep -E -- "^-A .*($dk_bridge|cni-podman0|${pm_subnet%/*}|${dk_gw%.*})" | sed 's/^-A //' |
        while read -r line; do eval "$cmd -w -t $tb -D $line" 2>/dev/null; done
      new=$($cmd-save -t $tb 2>/dev/null | sed -n 's/^:\(\(CNI\|DOCKER\)[^ ]*\).*/\1/p' | grep -vxF -f <(echo "$ipt_before") || true)
      [ -n "$new" ] || continue
      for c in $new; do
        $cmd-save -t $tb 2>/dev/null | grep -E -- "^-A .* -j $c( |\$)" | sed 's/^-A //' |
          while read -r line; do eval "$cmd -w -t $tb -D $line" 2>/dev/null; done
      done
      for c in $new; do $cmd -w -t $tb -F "$c" 2>/dev/null; done
      for c in $new; do $cmd -w -t $tb -X "$c" 2>/dev/null; done
    done
  done
  echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward
  for f in $bridge_nf; do echo "${f#*=}" >"${f%=*}"; done
  rmdir_cgroup "$RBOX_CGROUP_PARENT"
  # cgroups Docker and Podman (cgroupfs) made
  for c in /sys/fs/cgroup/*/docker /sys/fs/cgroup/*/libpod_parent; do
    [ -d "$c" ] || continue
    grep -qxF "$c" <<<"$cgroups_before" && continue
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  [ "$had_run_docker" = 1 ] || rm -rf /run/docker
  [ "$had_run_containerd" = 1 ] || rm -rf /run/containerd
  [ "$had_key" = 1 ] || rm -f /etc/docker/key.json
  [ "$had_etc_docker" = 1 ] || rmdir /etc/docker 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the image -------------------------------------------------------------------
RRUN=$RBOX_RUNTIME "$here/scripts/busybox-bundle.sh" "$d/bb" true >/dev/null
tar -C "$d/bb/rootfs" --numeric-owner -cf "$d/bb.tar" .
rb import "$d/bb.tar" "$image" >/dev/null
rb save -o "$d/bb-docker.tar" "$image"

# --- podman ----------------------------------------------------------------------
have_podman=0
if command -v podman >/dev/null; then
  mkdir -p "$d/pm-net"
  # No default_ulimits: with nproc/nofile limits in the spec runc (through
  # conmon) failed here with "error setting rlimit type 6: operation not
  # permitted" (no CAP_SYS_RESOURCE); without them the container inherits
  # Podman's. crun refuses this hybrid cgroup host, so runc.
  cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = []
[network]
network_backend = "cni"
network_config_dir = "$d/pm-net"
default_network = "$pm_net"
default_subnet = "$pm_subnet"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
  if out=$(pm load -q -i "$d/bb-docker.tar" 2>&1) && out=$(pm run --rm "$image" true 2>&1); then
    have_podman=1
  else
    notes+=("podman is left out: $(tail -n1 <<<"$out")")
  fi
else
  notes+=("podman is left out: not installed")
fi

# --- docker ----------------------------------------------------------------------
have_docker=0
docker_client=$(command -v /usr/bin/docker || command -v docker || true)
if command -v dockerd >/dev/null && [ -n "$docker_client" ]; then
  ip link add "$dk_bridge" type bridge
  ip addr add "$dk_gw" dev "$dk_bridge"
  ip link set "$dk_bridge" up
  echo '{}' >"$d/daemon.json"
  dockerd --config-file "$d/daemon.json" --data-root "$d/docker" --exec-root "$d/docker-exec" \
    -H "unix://$dk_sock" --pidfile "$d/docker.pid" -b "$dk_bridge" --ip-forward=false \
    --userland-proxy=false >"$d/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 300); do
    dk info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! dk info >/dev/null 2>&1; then
    notes+=("docker is left out: dockerd did not start: $(tail -n1 "$d/dockerd.log")")
  elif out=$(dk load -q -i "$d/bb-docker.tar" 2>&1) && out=$(dk run --rm "$image" true 2>&1); then
    have_docker=1
  else
    notes+=("docker is left out: $(tail -n1 <<<"$out")")
  fi
else
  notes+=("docker is left out: dockerd (Debian's docker.io, make deps) is not installed")
fi
for n in "${notes[@]}"; do echo "$n" >&2; done

# --- run --rm ----------------------------------------------------------------------
args=(-n "rbox" "$rbox --root $d/rbox run --rm $image true"
  -n "rbox --network none" "$rbox --root $d/rbox run --rm --network none $image true")
if [ $have_podman = 1 ]; then
  p="podman --root $d/pm-root --runroot $d/pm-run"
  args+=(-n "podman" "$p run --rm $image true" -n "podman --network none" "$p run --rm --network none $image true")
fi
if [ $have_docker = 1 ]; then
  args+=(-n "docker" "$docker_client -H unix://$dk_sock run --rm $image true"
    -n "docker --network none" "$docker_client -H unix://$dk_sock run --rm --network none $image true")
fi
echo "== run --rm IMAGE true: rbox vs podman vs docker (default bridge network and --network none)"
hyperfine -N --warmup 3 --runs "$runs" --style basic --export-json "$work/rbox-run.json" "${args[@]}"

# --- one idle detached container each: memory of its supervisor, then exec --------------
rid=$(rb run -d --name bench-idle "$image" sleep 100000)
[ $have_podman = 1 ] && pid_=$(pm run -d --name bench-idle "$image" sleep 100000)
[ $have_docker = 1 ] && did=$(dk run -d --name bench-idle "$image" sleep 100000)
sleep 2
mem_json() { # name regex
  local rss pss thr
  read -r rss pss thr < <(proc_mem "$2")
  echo "$1: VmRSS $rss kB, Pss $pss kB, $thr threads" >&2
  printf '"%s":{"rss":%s,"pss":%s,"threads":%s}' "$1" "$rss" "$pss" "$thr"
}
echo "== memory of the supervisor of one idle detached container"
mems=$(mem_json rbox "containerd-shim-rrun-v2 .*-id $rid( |$)")
[ $have_podman = 1 ] && mems+=,$(mem_json podman "conmon .*-c $pid_ -u $pid_ ")
[ $have_docker = 1 ] && mems+=,$(mem_json docker "containerd-shim-runc-v2 .*-id $did( |$)")

args=(-n rbox "$rbox --root $d/rbox exec bench-idle true")
[ $have_podman = 1 ] && args+=(-n podman "podman --root $d/pm-root --runroot $d/pm-run exec bench-idle true")
[ $have_docker = 1 ] && args+=(-n docker "$docker_client -H unix://$dk_sock exec bench-idle true")
echo "== exec CTR true into a running container"
hyperfine -N --warmup 3 --runs "$runs" --style basic --export-json "$work/rbox-exec.json" "${args[@]}"

# --- ps with many running containers: no process or connection per container ------
# (the containers are on --network none, so that 200 of them start quickly;
# bench-idle runs too)
echo "== ps with 50 and 200 containers running"
running=1
for n in 50 200; do
  while [ $running -lt $n ]; do
    rb run -d --network none "$image" sleep 100000 >/dev/null
    running=$((running + 1))
  done
  hyperfine -N --warmup 3 --runs "$runs" --style basic --export-json "$work/rbox-ps-$n.json" \
    -n "rbox ps, $n running" "$rbox --root $d/rbox ps"
done

vers=$(printf '"rbox":"%s"' "$("$rbox" --version | head -n1)")
[ $have_podman = 1 ] && vers+=$(printf ',"podman":"%s"' "$(podman --version | head -n1)")
[ $have_docker = 1 ] && vers+=$(printf ',"docker":"%s"' "$(dk version -f 'Docker Engine {{.Server.Version}}, containerd {{range .Server.Components}}{{if eq .Name "containerd"}}{{.Version}}{{end}}{{end}}')")
python3 - "$work/rbox-mem.json" "$runs" "{$mems}" "{$vers}" "${notes[@]}" <<'PY'
import json, sys
out, runs, mems, vers, notes = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5:]
json.dump({"runs": runs, "memory": mems, "versions": vers, "notes": notes}, open(out, "w"), indent=1)
PY
