#!/usr/bin/env bash
# make soak: kill -9 at random points of rbox's life cycle, then count what
# is left. Each cycle starts one rbox command (run -d with a published port,
# run --rm, exec, stop, rm -f) on a throw-away store and, after a random delay
# of 2-60 ms, kills one of the processes working for it with SIGKILL: the
# rbox command itself, the container's shim, or an rrun process. After the
# cycles every container is removed with `rbox rm -f`, and every kind of
# thing a container may leave is counted; all counts must be 0.
# Needs root. RRUN, RBOX, SHIM and CNI_BIN_DIR name the binaries (as for
# demo.sh); SOAK_CYCLES the number of cycles (default 300); SOAK_SEED the
# random seed (default: the pid). The containers go under a cgroup parent of
# the soak's own, on the default rbox bridge; nothing else may use rbox0
# while it runs.
set -euo pipefail
rbox_bin=${RBOX:-rbox}
export RBOX_RUNTIME=${RRUN:-$(command -v rrun || echo rrun)}
export RBOX_SHIM=${SHIM:-$(command -v containerd-shim-rrun-v2 || echo containerd-shim-rrun-v2)}
export RBOX_CNI_PATH=${CNI_BIN_DIR:-/usr/local/lib/cni:/usr/lib/cni}
export RBOX_CGROUP_PARENT=/rbox-soak-$$
. "$(dirname "$0")/cgroup-parent.sh"
cycles=${SOAK_CYCLES:-300}
RANDOM=${SOAK_SEED:-$$}
base_port=19000

[ "$(id -u)" = 0 ] || { echo "soak.sh runs real containers: run it as root" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "busybox-static is not installed (make deps)" >&2; exit 1; }

had_bridge=0; ip link show rbox0 >/dev/null 2>&1 && had_bridge=1
had_leases=0; [ -e /var/lib/cni/networks/rbox ] && had_leases=1
had_rcni=0; nft list table ip rcni >/dev/null 2>&1 && had_rcni=1
had_run_rbox=0; [ -e /run/rbox ] && had_run_rbox=1
made_dirs=()
for d in /run/netns /var/lib/cni /var/lib/cni/networks /run/containerd /run/containerd/s; do
  [ -e "$d" ] || made_dirs+=("$d")
done
work=$(mktemp -d /tmp/rbox-soak.XXXXXX)
store=$work/store
rb() { "$rbox_bin" --root "$store" "$@"; }
# a shim of this soak's: it runs in a bundle of the store
ours() { case $(readlink "/proc/$1/cwd" 2>/dev/null) in "$store"/*) return 0 ;; esac; return 1; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -d "$store" ]; then
    rb rm -f $(rb ps -aq 2>/dev/null) >/dev/null 2>&1
    for p in $(pgrep -f -- "containerd-shim-rrun-v2 " || true); do
      ours "$p" && kill -KILL "$p"
    done
  fi
  findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
  if [ "$had_bridge" = 0 ] && ip link show rbox0 >/dev/null 2>&1; then ip link del rbox0; fi
  if [ "$had_leases" = 0 ]; then rm -rf /var/lib/cni/networks/rbox; fi
  if [ "$had_rcni" = 0 ] && nft list table ip rcni >/dev/null 2>&1; then nft delete table ip rcni; fi
  # the host-port claims' directory (and its lock file) rbox made
  if [ "$had_run_rbox" = 0 ]; then rm -rf /run/rbox; fi
  for ((i = ${#made_dirs[@]} - 1; i >= 0; i--)); do
    d=${made_dirs[$i]}
    if [ -d "$d" ] && ! mountpoint -q "$d"; then rmdir "$d" 2>/dev/null; fi
  done
  rmdir_cgroup "$RBOX_CGROUP_PARENT" 2>/dev/null
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# an image from busybox-static
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in sh sleep true cat echo; do ln -s busybox "$work/rootfs/bin/$a"; done
tar -C "$work/rootfs" -cf "$work/bb.tar" .
rb import "$work/bb.tar" soak/bb >/dev/null

# the shim of container NAME (its command line names the container's id)
shim_of() {
  local id
  id=$(rb inspect -f '{{.Id}}' "$1" 2>/dev/null) || return 0
  pgrep -f -- "containerd-shim-rrun-v2 .*-id $id" || true
}

# kill -9 one process working for the command PID on container NAME
victim() {
  local pid=$1 name=$2 what=$((RANDOM % 3)) p=""
  case $what in
    0) p=$pid; kind=rbox ;;
    1) p=$(shim_of "$name" | head -1); kind=shim ;;
    2) p=$( (pgrep -f -- "--root $store/runtime" || true) | head -1); kind=rrun ;;
  esac
  if [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; then
    kills[$kind]=$((${kills[$kind]:-0} + 1))
    echo "$(date +%s.%N) cycle $i: ${cmd[*]}: kill -9 of $kind after ${delay} ms" >>"$work/cycles.log"
  fi
}

declare -A kills=() verbs=()
live=()
for ((i = 0; i < cycles; i++)); do
  # a verb: mostly runs, so that there is something to exec, stop and remove
  r=$((RANDOM % 10))
  if [ ${#live[@]} -eq 0 ] || [ $r -lt 4 ]; then
    name=s$i
    cmd=(run -d --name "$name" -p "$((base_port + i)):80" soak/bb sleep 600)
    live+=("$name")
    verb=run
  elif [ $r -lt 5 ]; then
    name=r$i
    cmd=(run --rm --name "$name" soak/bb true)
    verb=run-rm
  else
    name=${live[$((RANDOM % ${#live[@]}))]}
    case $((r % 3)) in
      0) cmd=(exec "$name" true); verb=exec ;;
      1) cmd=(stop -t 1 "$name"); verb=stop ;;
      *) cmd=(rm -f "$name"); verb=rm ;;
    esac
  fi
  verbs[$verb]=$((${verbs[$verb]:-0} + 1))
  rb "${cmd[@]}" >/dev/null 2>"$work/stderr" &
  pid=$!
  delay=$((2 + RANDOM % 59))
  sleep "$(printf '0.%03d' "$delay")"
  victim "$pid" "$name"
  wait "$pid" 2>/dev/null || true
  if [ -n "${SOAK_TRACE:-}" ]; then
    echo "$(date +%s.%N) cycle $i: ${cmd[*]}: done, $name is $(rb inspect -f '{{.Id}} {{.State.Status}}' "$name" 2>&1)" >>"$work/cycles.log"
    sed "s/^/$(date +%s.%N) cycle $i: stderr: /" "$work/stderr" >>"$work/cycles.log"
  fi
done

# every command after a kill must still work: list, then remove everything
rb ps -a >/dev/null 2>&1 || true
ids=$(rb ps -aq 2>/dev/null || true)
rm_failed=0
if [ -n "$ids" ]; then rb rm -f $ids >/dev/null 2>"$work/rm.err" || rm_failed=1; fi

declare -A left=()
left[containers]=$(rb ps -aq 2>/dev/null | wc -l)
left[container-dirs]=$(find "$store/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
left[runtime-state]=$(find "$store/runtime" -mindepth 2 -maxdepth 2 2>/dev/null | wc -l)
left[shims]=0
for p in $(pgrep -f -- "containerd-shim-rrun-v2 " || true); do
  ! ours "$p" || left[shims]=$((${left[shims]} + 1))
done
left[rrun]=$( (pgrep -f -- "--root $store/runtime" || true) | wc -l)
left[netns]=$(ip netns list 2>/dev/null | grep -c '^rbox-' || true)
left[veths]=$(ip -o link show master rbox0 2>/dev/null | wc -l)
left[mounts]=$(findmnt -rn -o TARGET | grep -cF "$work/" || true)
left[cgroups]=0
for h in $(awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/self/mounts | sort -u); do
  [ -d "$h$RBOX_CGROUP_PARENT" ] || continue
  n=$(find "$h$RBOX_CGROUP_PARENT" -mindepth 1 -type d | wc -l)
  left[cgroups]=$((${left[cgroups]} + n))
done
left[nft-rules]=$( (nft -a list table ip rcni 2>/dev/null || true) | grep -c 'comment "rcni rbox' || true)
left[leases]=$(find /var/lib/cni/networks/rbox -maxdepth 1 -type f ! -name 'last_reserved_ip*' ! -name lock 2>/dev/null | wc -l)

echo "soak: $cycles cycles (seed ${SOAK_SEED:-$$})"
printf '  commands:'; for k in "${!verbs[@]}"; do printf ' %s %s' "$k" "${verbs[$k]}"; done; echo
printf '  kill -9:'; for k in "${!kills[@]}"; do printf ' %s %s' "$k" "${kills[$k]}"; done; echo
[ "$rm_failed" = 0 ] || { echo "  rm -f failed:"; sed 's/^/    /' "$work/rm.err"; }
total=0
echo "  left after rm -f of everything:"
for k in containers container-dirs runtime-state shims rrun netns veths mounts cgroups nft-rules leases; do
  printf '    %-15s %s\n' "$k" "${left[$k]}"
  total=$((total + ${left[$k]}))
done
if [ "${left[runtime-state]}" != 0 ]; then
  # what rrun kept, when, and the kills around that time
  for d in $(find "$store/runtime" -mindepth 2 -maxdepth 2); do
    echo "  runtime state $d (made $(stat -c %Y.%y "$d"))"
    printf '    %s\n' "$(head -c 600 "$d/state.json" 2>/dev/null)"
    t=$(stat -c %Y "$d")
    awk -v t="$t" '$1 >= t - 2 && $1 <= t + 2' "$work/cycles.log" | sed 's/^/    /'
    grep -F "$(basename "$d")" "$work/cycles.log" | sed 's/^/    same id: /'
  done
fi
for p in $(pgrep -f -- "containerd-shim-rrun-v2 " || true); do
  ours "$p" || continue
  # a shim left: its command line, its bundle and the kills around its start
  t=$(( $(date +%s) - ($(awk '{print int($1)}' /proc/uptime) - $(awk '{print int($22 / 100)}' "/proc/$p/stat")) ))
  echo "  shim $p: $(tr '\0' ' ' <"/proc/$p/cmdline") in $(readlink "/proc/$p/cwd"), started at $t"
  ls "$(readlink "/proc/$p/cwd")" 2>&1 | sed 's/^/    bundle: /'
  pgrep -P "$p" -a | sed 's/^/    child: /'
  awk -v t="$t" '$1 >= t - 2 && $1 <= t + 2' "$work/cycles.log" | sed 's/^/    /'
done
[ "$total" = 0 ] && [ "$rm_failed" = 0 ] || { echo "soak: something was left" >&2; exit 1; }
echo "soak: nothing left"
