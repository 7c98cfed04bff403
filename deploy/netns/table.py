#!/usr/bin/env python3
"""Markdown table of deploy/netns/bench.sh results: the latency the rounds cost beside the
measured session time.

A veil round is one message from each party to the next (replicated sharing), not a request and
its answer, so a round costs the one-way delay (RTT / 2); both products are printed.
"""
import json
import sys

RTT_S = {"loopback": 0.0, "lan": 0.0002, "wan": 0.020}
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]


def fields(r):
    """(rounds, session median s, client wall median s) of any bench line."""
    if r["op"] in ("rag", "mlp"):
        return r["mpc_rounds"], r["mpc_session_median_s"], r["mpc_median_s"]
    return r["rounds"], r["median_s"], r.get("invoke_wall_median_s") or r["median_s"]


def label(r):
    if r["op"] == "mlp":
        return f"mlp {r['arch']} batch {r['batch']}"
    if r["op"] == "rag":
        return f"rag {r['size']:,} (k={r['k']}, dim {r['dim']})"
    return f"{r['op']} {r['size']:,}"


print("| op | profile | rounds | rounds × RTT (s) | rounds × RTT/2 (s) | session median (s) | client wall median (s) | session − rounds × RTT/2 (s) |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
order = {p: i for i, p in enumerate(["loopback", "lan", "wan"])}
rows.sort(key=lambda r: (label(r), order.get(r["profile"], 9)))
for r in rows:
    rounds, session, wall = fields(r)
    rtt = RTT_S.get(r["profile"], 0.0)
    print(f"| {label(r)} | {r['profile']} | {rounds} | {rounds * rtt:.3f} | {rounds * rtt / 2:.3f} | {session:.4f} | {wall:.4f} | {session - rounds * rtt / 2:.4f} |")
