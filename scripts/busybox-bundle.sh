#!/usr/bin/env bash
# Make an OCI bundle with a busybox rootfs: scripts/busybox-bundle.sh DIR [ARGS...]
# The rootfs is /bin/busybox from Debian's busybox-static plus one symlink per
# applet; config.json is `rrun spec` with terminal off and ARGS as the process.
set -euo pipefail
dir=$1; shift
rrun=${RRUN:-rrun}
[ -x /bin/busybox ] || { echo "busybox-static is not installed (make deps)" >&2; exit 1; }
mkdir -p "$dir/rootfs"/{bin,etc,proc,sys,dev,tmp,root}
install -m 0755 /bin/busybox "$dir/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
"$rrun" spec --bundle "$dir"
python3 - "$dir/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
c = json.load(open(path))
c["process"]["terminal"] = False
if args:
    c["process"]["args"] = args
json.dump(c, open(path, "w"), indent=2)
PY
