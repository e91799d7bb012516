#!/usr/bin/env bash
# hessian2 encode/decode speed: our criterion benchmark beside hessian.js (the anchor) on the same
# values, in the same run. Prints a markdown table of ns/op, MB/s and the speed-up over hessian.js.
#   bench/hessian.sh [seconds-per-js-benchmark]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-3}"
scripts/install-peers.sh
cargo bench -p dubbo-codec --bench hessian -- --noplot --warm-up-time 1 --measurement-time "$secs" >&2
js=$(node peers/node/bench.js --seconds "$secs")
python3 - "$js" <<'PY'
import json, sys
js = json.loads(sys.argv[1])
def rust(group, op):
    est = json.load(open(f"target/criterion/{group}/{op}/new/estimates.json"))
    return est["mean"]["point_estimate"]
print(f"hessian2, {js['tool']} on node {js['node']} as anchor\n")
print("| value | bytes | op | dubbo-codec ns/op | MB/s | hessian.js ns/op | speed-up |")
print("|---|---|---|---|---|---|---|")
for group, key in [("pojo", "pojo"), ("list100", "list")]:
    size = js[key]["bytes"]
    for op in ["encode", "decode"]:
        ours, theirs = rust(group, op), js[key][f"{op}_ns"]
        print(f"| {group} | {size} | {op} | {ours:,.0f} | {size / ours * 1e3:,.0f} | {theirs:,.0f} | {theirs / ours:.1f}x |")
for op in ["encode", "decode"]:
    print(f"| request_frame (list100) | | {op} | {rust('request_frame', op):,.0f} | | | |")
PY
