# Shared by cluster.sh and bench.sh: three node namespaces and a client namespace on a bridge,
# addresses only in 10.77.0.0/24 (links this script creates), torn down by netns_down.
#
#   node i   namespace ${NS}-n<i>, veth v<i> = 10.77.0.<i+1>/24, `veil node` on 0.0.0.0:710<i>
#   client   namespace ${NS}-c,    veth vc  = 10.77.0.10/24
#   bridge   namespace ${NS}-br,   br0 joining b0 b1 b2 bc
#
# Needs root and `ip netns`. Expects $VEIL (the veil binary) and $WORK (a scratch directory).

NS="${NS:-veilt$$}"
SUBNET_PREFIX=10.77.0
NODE_IP=("$SUBNET_PREFIX.1" "$SUBNET_PREFIX.2" "$SUBNET_PREFIX.3")
CLIENT_IP="$SUBNET_PREFIX.10"
NODE_PIDS=()
RELAY_PIDS=()

# Whether this machine can run the namespace tests (prints why not).
netns_usable() {
    if [ "$(id -u)" != 0 ]; then echo "not root"; return 1; fi
    if ! command -v ip >/dev/null; then echo "no ip(8)"; return 1; fi
    local probe="veilprobe$$"
    if ! ip netns add "$probe" 2>/dev/null; then echo "ip netns add failed"; return 1; fi
    ip netns del "$probe"
    return 0
}

netns_up() {
    ip netns add "$NS-br"
    ip -n "$NS-br" link add br0 type bridge
    ip -n "$NS-br" link set br0 up
    ip -n "$NS-br" link set lo up
    local names=(n0 n1 n2 c) ips=("${NODE_IP[@]}" "$CLIENT_IP") ends=(0 1 2 c)
    for k in 0 1 2 3; do
        local ns="$NS-${names[$k]}" e="${ends[$k]}"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip link add "v$e-$NS" type veth peer name "b$e-$NS"
        ip link set "v$e-$NS" netns "$ns"
        ip link set "b$e-$NS" netns "$NS-br"
        ip -n "$ns" link set "v$e-$NS" name "v$e"
        ip -n "$NS-br" link set "b$e-$NS" name "b$e"
        ip -n "$ns" addr add "${ips[$k]}/24" dev "v$e"
        ip -n "$ns" link set "v$e" up
        ip -n "$NS-br" link set "b$e" master br0
        ip -n "$NS-br" link set "b$e" up
    done
}

netns_down() {
    netns_stop_nodes
    local n
    for n in n0 n1 n2 c br; do
        ip netns del "$NS-$n" 2>/dev/null || true
    done
}

# Key material and configs for nodes at 10.77.0.{1,2,3}:710{0,1,2}.
netns_layout() {
    "$VEIL" devnet --dir "$WORK/cluster" --hosts "$(IFS=,; echo "${NODE_IP[*]}")" --clients alice >/dev/null
}

# Starts the three nodes, each in its own namespace (logs in $WORK/node-<i>.log).
netns_start_nodes() {
    local i
    for i in 0 1 2; do
        ip netns exec "$NS-n$i" "$VEIL" node --config "$WORK/cluster/node-$i.toml" \
            >>"$WORK/node-$i.log" 2>&1 &
        NODE_PIDS+=($!)
    done
}

# In the client namespace, as alice.
in_client() {
    ip netns exec "$NS-c" "$@"
}

# Waits until `veil health --cluster` passes from the client namespace (up to $1 s).
netns_wait_healthy() {
    local deadline=$((SECONDS + ${1:-30}))
    until in_client "$VEIL" health --cluster "$WORK/cluster/cluster.toml" --timeout 2 >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            in_client "$VEIL" health --cluster "$WORK/cluster/cluster.toml" --timeout 2 || true
            tail -n 20 "$WORK"/node-*.log
            return 1
        fi
        sleep 0.3
    done
}

# Puts a linkem relay in front of every node: node i listens on 127.0.0.1:710i inside its
# namespace and the relay takes its public address 10.77.0.<i+1>:710i, so every connection
# (peer or client) to node i crosses one relay (round trip 2 × one-way delay). $1: profile.
netns_start_relays() {
    local profile="$1" i
    for i in 0 1 2; do
        sed -i "s/^listen = .*/listen = \"127.0.0.1:710$i\"/" "$WORK/cluster/node-$i.toml"
        ip netns exec "$NS-n$i" "$LINKEM" --profile "$profile" \
            --route "${NODE_IP[$i]}:710$i=127.0.0.1:710$i" >>"$WORK/linkem-$i.log" 2>&1 &
        RELAY_PIDS+=($!)
    done
}

netns_stop_nodes() {
    local p
    for p in "${RELAY_PIDS[@]}" "${NODE_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${RELAY_PIDS[@]}" "${NODE_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    RELAY_PIDS=()
    NODE_PIDS=()
}
