#!/usr/bin/env bash
# bench-pull.sh WORK RBOX [RUNS]
# Cold pull of a realistic two-layer image from a local registry:
# `rbox pull` (download and unpack) vs `skopeo copy` to a dir (download only)
# vs `podman pull` (and `docker pull` when a Docker daemon is running).
# The image: a Debian minbase rootfs (debootstrap) plus a layer that installs
# a web server; built once and cached under /var/cache/rbox-bench. Writes
# WORK/pull.json for bench.sh. Used by bench.sh.
set -euo pipefail
work=$1 rbox=$2 runs=${3:-5}
cache=/var/cache/rbox-bench
mkdir -p "$cache"

# --- the image (cached) ------------------------------------------------------
if [ ! -f "$cache/layout/index.json" ]; then
  echo "== building the bench image (debootstrap, once)"
  rm -rf "$cache/upper" "$cache/work" "$cache/merged" "$cache/layout"
  if [ ! -x "$cache/minbase/usr/bin/apt-get" ]; then
    rm -rf "$cache/minbase"
    debootstrap --variant=minbase bookworm "$cache/minbase" http://deb.debian.org/debian >/dev/null
  fi
  # like debian:bookworm-slim: no package cache, lists, docs, man pages or locales
  rm -rf "$cache/minbase/var/cache/apt/archives/"*.deb "$cache/minbase/var/lib/apt/lists/"* \
    "$cache/minbase/usr/share/doc/"* "$cache/minbase/usr/share/man/"* "$cache/minbase/usr/share/locale/"*
  mkdir -p "$cache/upper" "$cache/work" "$cache/merged"
  mount -t overlay overlay -o "lowerdir=$cache/minbase,upperdir=$cache/upper,workdir=$cache/work" "$cache/merged"
  trap 'umount "$cache/merged" 2>/dev/null || true' EXIT
  cp /etc/resolv.conf "$cache/merged/etc/resolv.conf"
  # no service starts in the chroot
  printf '#!/bin/sh\nexit 101\n' >"$cache/merged/usr/sbin/policy-rc.d"
  chmod +x "$cache/merged/usr/sbin/policy-rc.d"
  chroot "$cache/merged" apt-get update -qq </dev/null >/dev/null
  chroot "$cache/merged" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends lighttpd </dev/null >/dev/null
  chroot "$cache/merged" apt-get clean
  rm -f "$cache/merged/usr/sbin/policy-rc.d"
  umount "$cache/merged"
  trap - EXIT
  tar -C "$cache/minbase" --numeric-owner -cf "$cache/layer1.tar" .
  # the upper dir is the second layer; overlayfs whiteouts (0:0 character
  # devices) of files apt removed are left out: a bench image, not a diff
  tar -C "$cache/upper" --numeric-owner --exclude='./var/lib/apt/lists/*' \
    $(cd "$cache/upper" && find . -type c -printf '--exclude=%p ') -cf "$cache/layer2.tar" .
  python3 - "$cache" <<'PY'
import gzip, hashlib, json, os, sys
cache = sys.argv[1]
lay = f"{cache}/layout"
os.makedirs(f"{lay}/blobs/sha256", exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{lay}/blobs/sha256/{d}", "wb").write(data)
    return {"digest": f"sha256:{d}", "size": len(data)}
layers, diff_ids = [], []
for n in (1, 2):
    raw = open(f"{cache}/layer{n}.tar", "rb").read()
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    layers.append(dict(blob(gzip.compress(raw, 6, mtime=0)),
                       mediaType="application/vnd.oci.image.layer.v1.tar+gzip"))
config = {"architecture": "amd64" if os.uname().machine == "x86_64" else "arm64", "os": "linux",
          "config": {"Cmd": ["lighttpd", "-D", "-f", "/etc/lighttpd/lighttpd.conf"],
                     "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
          "rootfs": {"type": "layers", "diff_ids": diff_ids}}
cfg = dict(blob(json.dumps(config).encode()), mediaType="application/vnd.oci.image.config.v1+json")
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cfg, "layers": layers}
m = dict(blob(json.dumps(manifest).encode()), mediaType="application/vnd.oci.image.manifest.v1+json",
         annotations={"org.opencontainers.image.ref.name": "server"})
json.dump({"schemaVersion": 2, "manifests": [m]}, open(f"{lay}/index.json", "w"))
open(f"{lay}/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
PY
  rm -rf "$cache/upper" "$cache/work" "$cache/merged" "$cache/layer1.tar" "$cache/layer2.tar"
fi

# --- a local registry with the image ------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
log:
  level: error
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry=$!
stop() {
  kill "$registry" 2>/dev/null || true
  wait "$registry" 2>/dev/null || true
  rm -rf "$work/registry" "$work/rbox-root" "$work/skopeo-dir"
  [ -d "$work/podman-root" ] && { podman --root "$work/podman-root" --runroot "$work/podman-run" rmi -a -f >/dev/null 2>&1 || true; rm -rf "$work/podman-root" "$work/podman-run"; }
}
trap stop EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
image=127.0.0.1:$port/bench/debian:server
skopeo copy -q --dest-tls-verify=false "oci:$cache/layout:server" "docker://$image"

# --- timed pulls -----------------------------------------------------------------
cmds=(
  -n rbox --prepare "rm -rf $work/rbox-root" "$rbox --root $work/rbox-root pull $image"
  -n skopeo --prepare "rm -rf $work/skopeo-dir" "skopeo copy -q --src-tls-verify=false docker://$image dir:$work/skopeo-dir"
  -n podman --prepare "podman --root $work/podman-root --runroot $work/podman-run rmi -a -f >/dev/null 2>&1 || true"
  "podman --root $work/podman-root --runroot $work/podman-run pull -q --tls-verify=false $image"
)
if docker info >/dev/null 2>&1; then
  cmds+=(-n docker --prepare "docker rmi -f $image >/dev/null 2>&1 || true" "docker pull -q $image")
fi
hyperfine --runs "$runs" --warmup 1 --export-json "$work/pull-times.json" "${cmds[@]}" >/dev/null
# sizes: compressed blobs, and what rbox unpacked (one more pull)
rm -rf "$work/rbox-root"
$rbox --root "$work/rbox-root" pull "$image" >/dev/null
python3 - "$work" "$cache/layout" <<'PY'
import json, os, subprocess, sys
work, lay = sys.argv[1:3]
t = {r["command"]: r["median"] for r in json.load(open(f"{work}/pull-times.json"))["results"]}
idx = json.load(open(f"{lay}/index.json"))
man = json.load(open(f"{lay}/blobs/sha256/" + idx["manifests"][0]["digest"].split(":")[1]))
compressed = sum(l["size"] for l in man["layers"])
unpacked = int(subprocess.run(["du", "-sb", f"{work}/rbox-root/snapshots"], capture_output=True,
                              text=True).stdout.split()[0])
out = {"times": t, "compressed_mb": compressed / 1e6, "unpacked_mb": unpacked / 1e6,
       "layers": len(man["layers"])}
json.dump(out, open(f"{work}/pull.json", "w"))
for k, v in t.items():
    print(f"pull {k}: {v*1000:.0f} ms")
print(f"image: {out['layers']} layers, {out['compressed_mb']:.1f} MB compressed, {out['unpacked_mb']:.1f} MB unpacked;"
      f" rbox unpack throughput {out['unpacked_mb'] / t['rbox']:.0f} MB/s")
PY
