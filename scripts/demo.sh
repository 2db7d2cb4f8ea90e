#!/usr/bin/env bash
# make demo: build a busybox bundle and run a real container with rrun.
set -euo pipefail
rrun=${RRUN:-rrun}
work=$(mktemp -d /tmp/rrun-demo.XXXXXX)
root="$work/state"
cleanup() {
  "$rrun" --root "$root" delete --force demo >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building a busybox bundle in $work/bundle"
RRUN=$rrun "$(dirname "$0")/busybox-bundle.sh" "$work/bundle" sh -c '
  echo "hostname:   $(hostname)"
  echo "my pid:     $$ (PID 1 of its own pid namespace)"
  echo "identity:   $(id)"
  echo "processes:"; ps
  echo "mounts:";    mount | sed "s/^/  /"
  echo "network:";   ip -o link | sed "s/^/  /"
  echo "capabilities: $(grep CapEff /proc/self/status)"'

echo "== rrun run demo"
"$rrun" --root "$root" run --bundle "$work/bundle" demo
echo "== the container exited (status 0); rrun run deleted it, so rrun list shows no container:"
"$rrun" --root "$root" list
