#!/usr/bin/env bash
# Network-namespace cluster test: three `veil node`s on three addresses (10.77.0.1-3, each in
# its own network namespace, no loopback between them) and a client in a fourth namespace.
#   1. `veil health --cluster` from the client namespace;
#   2. e2e: `veil bench --transport grpc --cluster` (mul, ltz, chain; results checked against
#      plaintext) and the private RAG example (`private_rag --cluster`, answers must match
#      the plaintext top-k);
#   3. fault: node 1's link goes down (`ip link set down`) in the middle of a session: the
#      client's request fails with an error (no hang) and the nodes stay up; after
#      `ip link set up` a new request succeeds.
# Namespaces, links and processes are removed on exit. Needs root; exits 0 with a SKIP line
# when `ip netns` is unusable (set VEIL_NETNS_REQUIRED=1 to fail instead).
#
#   deploy/netns/cluster.sh [VEIL_BINARY] [PRIVATE_RAG_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

VEIL="$(realpath "${1:-target/debug/veil}")"
RAG="${2:-target/debug/examples/private_rag}"
# shellcheck source=deploy/netns/lib.sh
source deploy/netns/lib.sh

if ! why="$(netns_usable)"; then
    echo "netns: SKIP ($why)"
    [ "${VEIL_NETNS_REQUIRED:-0}" = 1 ] && exit 1
    exit 0
fi
WORK="$(mktemp -d)"
cleanup() {
    netns_down
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "netns: FAIL: $*"
    tail -n 30 "$WORK"/node-*.log || true
    exit 1
}

t0=$SECONDS
netns_up
netns_layout
netns_start_nodes
netns_wait_healthy 30 || fail "cluster not healthy"
echo "netns: three nodes healthy at ${NODE_IP[*]} (client at $CLIENT_IP)"

bench() {
    in_client "$VEIL" bench --transport grpc --cluster "$WORK/cluster/cluster.toml" --json "$@"
}
bench --ops mul,ltz,chain --size 1000 --reps 2 >"$WORK/e2e.json" 2>"$WORK/e2e.err" \
    || { cat "$WORK/e2e.err"; fail "e2e bench"; }
[ "$(wc -l <"$WORK/e2e.json")" = 3 ] || fail "e2e: expected 3 results: $(cat "$WORK/e2e.json")"
echo "netns: e2e mul, ltz, chain over 10.77.0.0/24 match plaintext"

if [ -x "$RAG" ]; then
    in_client "$RAG" --cluster "$WORK/cluster/cluster.toml" </dev/null >"$WORK/rag.out" 2>&1 \
        || { cat "$WORK/rag.out"; fail "private_rag"; }
    matches=$(grep -c "plaintext top-4 matches" "$WORK/rag.out" || true)
    [ "$matches" -ge 1 ] && ! grep -q DIFFERS "$WORK/rag.out" \
        || { cat "$WORK/rag.out"; fail "private_rag answers"; }
    echo "netns: private_rag: $matches answers match the plaintext top-4"
else
    echo "netns: private_rag not built ($RAG); skipping the RAG example"
fi

# Fault: a long session (10,000 dependent rounds), node 1's link cut after 1 s.
bench --ops chain --size 10000 --reps 5 >"$WORK/fault.json" 2>"$WORK/fault.err" &
client=$!
sleep 1
ip -n "$NS-n1" link set v1 down
cut_at=$SECONDS
if wait "$client"; then
    fail "the request succeeded although node 1 was cut off"
fi
took=$((SECONDS - cut_at))
echo "netns: with node 1 cut off the request failed after ${took} s:"
sed -n '/^Error/,/^Stack backtrace/p' "$WORK/fault.err" | grep -v '^$\|^Stack backtrace' | cut -c1-240 | sed 's/^/    /'
grep -q "Unavailable\|timed out" "$WORK/fault.err" || fail "the failure does not say the session timed out or a node is unavailable"
[ "$took" -le 40 ] || fail "the failure took ${took} s"
for i in 0 1 2; do
    kill -0 "${NODE_PIDS[$i]}" 2>/dev/null || fail "node $i exited after the link cut"
done
ip -n "$NS-n1" link set v1 up
netns_wait_healthy 30 || fail "not healthy after the link came back"
bench --ops mul --size 1000 --reps 1 >"$WORK/recover.json" 2>"$WORK/recover.err" \
    || { cat "$WORK/recover.err"; fail "request after recovery"; }
echo "netns: after the link came back a new request succeeded"
echo "netns: ok in $((SECONDS - t0)) s"
