#!/usr/bin/env bash
# Part of `make bench`: containerd with our shim vs containerd's runc shim
# driving runc and crun. Usage: scripts/bench-shim.sh WORK RRUN SHIM RUNS
# Writes WORK/shim.json (hyperfine) and WORK/shim-rss.json.
#
# One private containerd (temp config, root, state, sockets) runs inside a
# private mount namespace without the cgroup2 mount, so that crun (which
# refuses hybrid hosts) can run and all three do the same cgroup v1 work;
# every shim and container it starts is in that namespace too.
set -euo pipefail

if [ "${1:-}" = "--inner" ]; then
  if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then umount /sys/fs/cgroup/unified; fi
  shift
  exec "$@"
fi

work=$1 rrun=$2 shim=$3 runs=$4
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/proc-mem.sh"
d=$work/ctd
bin=$work/shim-bin
ns=rrun-bench
image=localhost/rrun-bench-busybox:latest
mkdir -p "$d" "$bin"
cp "$shim" "$bin/containerd-shim-rrun-v2"
ln -sf "$rrun" "$bin/rrun"
had_run_containerd=$([ -e /run/containerd ] && echo 1 || echo 0)
ctr() { command ctr -a "$d/containerd.sock" -n $ns "$@"; }
daemon=
cleanup_ctd() {
  for id in c-idle-rrun c-idle-runc; do
    ctr task kill -s KILL $id >/dev/null 2>&1 || true
    ctr task delete -f $id >/dev/null 2>&1 || true
    ctr container delete $id >/dev/null 2>&1 || true
  done
  ctr images rm $image >/dev/null 2>&1 || true
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
  rm -rf "/run/containerd/runc/$ns" "/run/containerd/rrun/$ns"
  [ "$had_run_containerd" = 1 ] || rm -rf /run/containerd
  for c in /sys/fs/cgroup/*/$ns; do rmdir "$c" 2>/dev/null || true; done
}
trap cleanup_ctd EXIT

cat > "$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[debug]
  address = "$d/debug.sock"
TOML
PATH=$bin:$PATH unshare -m --propagation private "$0" --inner containerd --config "$d/config.toml" >"$d/containerd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done

# the image: an OCI archive of a busybox rootfs, one uncompressed layer
img=$d/image
mkdir -p "$img/layout/blobs/sha256"
RRUN=$rrun "$here/scripts/busybox-bundle.sh" "$img/bundle" >/dev/null
blob() { local h; h=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$img/layout/blobs/sha256/$h"; echo "sha256:$h $(stat -c %s "$img/layout/blobs/sha256/$h")"; }
tar -C "$img/bundle/rootfs" --owner=0 --group=0 -cf "$img/layer.tar" .
read -r ldig lsize < <(blob "$img/layer.tar")
arch=$(uname -m); arch=${arch/x86_64/amd64}; arch=${arch/aarch64/arm64}
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$arch" "$ldig" > "$img/config.json"
read -r cdig csize < <(blob "$img/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' "$cdig" "$csize" "$ldig" "$lsize" > "$img/manifest.json"
read -r mdig msize < <(blob "$img/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"%s"}}]}' "$mdig" "$msize" "$image" > "$img/layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$img/layout/oci-layout"
tar -C "$img/layout" -cf "$img/image.tar" .
ctr images import "$img/image.tar" >/dev/null

c="$(command -v ctr) -a $d/containerd.sock -n $ns run --rm"
echo "== ctr run --rm of /bin/true: our shim + rrun vs containerd-shim-runc-v2 + runc / + crun (pure cgroup v1 view)"
hyperfine -N --warmup 3 --runs "$runs" --style basic --export-json "$work/shim.json" \
  -n rrun-shim "$c --runtime io.containerd.rrun.v2 $image c-rrun true" \
  -n runc-shim+runc "$c --runtime io.containerd.runc.v2 $image c-runc true" \
  -n runc-shim+crun "$c --runtime io.containerd.runc.v2 --runc-binary $(command -v crun) $image c-crun true"

echo "== RSS of one idle shim (a container running sleep)"
ctr run -d --runtime io.containerd.rrun.v2 $image c-idle-rrun sleep 1000 >/dev/null
ctr run -d --runtime io.containerd.runc.v2 $image c-idle-runc sleep 1000 >/dev/null
sleep 1
rss() { proc_mem "containerd-shim-.*-id $1 "; } # the shim serving container $1
read -r ours_rss ours_pss ours_threads < <(rss c-idle-rrun)
read -r runc_rss runc_pss runc_threads < <(rss c-idle-runc)
echo "rrun shim: VmRSS ${ours_rss} kB, Pss ${ours_pss} kB, ${ours_threads} threads; runc shim (Go): VmRSS ${runc_rss} kB, Pss ${runc_pss} kB, ${runc_threads} threads"
printf '{"ours_rss":%s,"ours_pss":%s,"ours_threads":%s,"runc_rss":%s,"runc_pss":%s,"runc_threads":%s}\n' "$ours_rss" "$ours_pss" "$ours_threads" "$runc_rss" "$runc_pss" "$runc_threads" > "$work/shim-rss.json"
