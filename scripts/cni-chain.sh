#!/usr/bin/env bash
# cni-chain.sh ADD|DEL PLUGIN_DIR NETNS ID DATA_DIR BRIDGE SUBNET HOSTPORT
# Runs the chain a CNI runtime runs for a container: loopback, bridge with
# host-local IPAM, portmap (HOSTPORT -> 80/tcp); DEL in reverse order.
# Used by bench.sh.
set -euo pipefail
cmd=$1 dir=$2 ns=$3 id=$4 data=$5 bridge=$6 subnet=$7 hostport=$8
export CNI_COMMAND=$cmd CNI_CONTAINERID=$id CNI_NETNS=/run/netns/$ns CNI_PATH=$dir
lo='{"cniVersion":"1.0.0","name":"bench-lo","type":"loopback"}'
br="{\"cniVersion\":\"1.0.0\",\"name\":\"bench\",\"type\":\"bridge\",\"bridge\":\"$bridge\",\"isGateway\":true,\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"$data\",\"ranges\":[[{\"subnet\":\"$subnet\"}]]}}"
pm() { # the portmap config around a prevResult
  printf '{"cniVersion":"1.0.0","name":"bench","type":"portmap","runtimeConfig":{"portMappings":[{"hostPort":%s,"containerPort":80,"protocol":"tcp"}]},"prevResult":%s}' "$hostport" "$1"
}
if [ "$cmd" = ADD ]; then
  CNI_IFNAME=lo "$dir/loopback" <<<"$lo" >/dev/null
  res=$(CNI_IFNAME=eth0 "$dir/bridge" <<<"$br")
  CNI_IFNAME=eth0 "$dir/portmap" <<<"$(pm "$res")" >/dev/null
else
  CNI_IFNAME=eth0 "$dir/portmap" <<<"$(pm '{"cniVersion":"1.0.0"}')" >/dev/null
  CNI_IFNAME=eth0 "$dir/bridge" <<<"$br" >/dev/null
  CNI_IFNAME=lo "$dir/loopback" <<<"$lo" >/dev/null
fi
