#!/usr/bin/env bash
# Run a command inside a private network namespace (docs: ../shared/testing/webrtc-in-a-namespace.md,
# recipe A): loopback plus one veth pair at 10.77.0.1, and no route anywhere else. WebRTC tests run
# here so that ICE traffic never leaves for this machine's other addresses.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "netns-run.sh: creating a network namespace needs root" >&2; exit 1; }
ns="caunoi-e2e-$$"
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add vA type veth peer name vB
ip -n "$ns" addr add 10.77.0.1/24 dev vA
ip -n "$ns" link set vA up
ip -n "$ns" link set vB up
export CAUNOI_NETNS="$ns"
ip netns exec "$ns" "$@"
