#!/usr/bin/env bash
# LAN/WAN benchmark: `veil bench --transport grpc --cluster` on three nodes in three network
# namespaces (see lib.sh), with the client in a fourth, under link profiles:
#   loopback  direct veth links, no emulation (what every earlier figure measured, in effect)
#   lan       linkem relay in front of each node: 0.2 ms RTT, 10 Gbit/s
#   wan       linkem relay in front of each node: 20 ms RTT, 1 Gbit/s
# Every connection to a node (peer or client) crosses that node's relay once, so its round
# trip costs the profile's RTT. Prints a Markdown table with rounds × RTT beside the measured
# session time; JSON lines go to $OUT_DIR (default: a temp dir, printed).
#
#   deploy/netns/bench.sh [--profile loopback,lan,wan] [--reps N] [--quick] [--runs op:size,...]
#
# --quick: small sizes (CI smoke). --runs: the op:size list to run instead of the default
# (e.g. `--runs rag:100000,mlp:100` for the issue's larger sizes). Needs root; a release build is faster but the debug build
# works (the crypto dependencies are optimised in dev builds too).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

PROFILES=loopback,lan,wan
REPS=3
QUICK=0
RUNS_ARG=
VEIL="${VEIL:-target/debug/veil}"
LINKEM="${LINKEM:-target/debug/linkem}"
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) PROFILES="$2"; shift 2 ;;
        --reps) REPS="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --runs) RUNS_ARG="$2"; shift 2 ;;
        *) echo "usage: $0 [--profile loopback,lan,wan] [--reps N] [--quick] [--runs op:size,...]"; exit 2 ;;
    esac
done
VEIL="$(realpath "$VEIL")"
LINKEM="$(realpath "$LINKEM")"
# shellcheck source=deploy/netns/lib.sh
source deploy/netns/lib.sh
if ! why="$(netns_usable)"; then
    echo "bench: needs root and ip netns ($why)"
    exit 1
fi
WORK="$(mktemp -d)"
OUT_DIR="${OUT_DIR:-$(mktemp -d)}"
trap 'netns_down; rm -rf "$WORK"' EXIT

if [ -n "$RUNS_ARG" ]; then
    IFS=, read -r -a RUNS <<<"$RUNS_ARG"
elif [ "$QUICK" = 1 ]; then
    # op:size list for `veil bench` (one invocation per entry)
    RUNS=(mul:1 mul:10000 chain:20 ltz:1000 rag:1000 mlp:1)
else
    RUNS=(mul:1 mul:1000000 chain:1000 ltz:100000 rag:10000 mlp:1)
fi

netns_up
IFS=, read -r -a profiles <<<"$PROFILES"
for profile in "${profiles[@]}"; do
    netns_layout
    if [ "$profile" != loopback ]; then
        netns_start_relays "$profile"
    fi
    netns_start_nodes
    netns_wait_healthy 60
    echo "bench: profile $profile" >&2
    for run in "${RUNS[@]}"; do
        op="${run%%:*}"
        size="${run##*:}"
        reps=$REPS
        # 1,000 dependent rounds at 20 ms: keep the WAN chain to two runs.
        [ "$op" = chain ] && [ "$profile" = wan ] && [ "$reps" -gt 2 ] && reps=2
        # RAG builds its retrieval program for the link (the top-k plan the cost model picks).
        extra=()
        [ "$op" = rag ] && extra=(--link "$profile")
        echo "bench: $profile $op $size (reps $reps)" >&2
        start=$SECONDS
        in_client "$VEIL" bench --transport grpc --cluster "$WORK/cluster/cluster.toml" \
            --ops "$op" --size "$size" --reps "$reps" "${extra[@]}" --json 2>>"$OUT_DIR/bench.err" \
            | sed "s/^{/{\"profile\":\"$profile\",\"elapsed_s\":$((SECONDS - start)),/" \
            >>"$OUT_DIR/results.jsonl"
    done
    netns_stop_nodes
done
echo "bench: JSON lines in $OUT_DIR/results.jsonl" >&2
python3 deploy/netns/table.py "$OUT_DIR/results.jsonl"
