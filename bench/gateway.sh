#!/usr/bin/env bash
# HTTP/JSON -> Dubbo2 through the gateway, beside a direct Dubbo2 client calling the same provider
# at the same concurrency, in the same run. Prints a markdown table: req/s, p50, p99, ratio.
#   bench/gateway.sh [seconds] [concurrency]
# Placement: wrk (1 thread), the gateway and the provider (one process: `gateway demo`) and the
# direct client all share this machine's cores; each scenario runs alone.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conc="${2:-32}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p gateway --bin gateway -p testkit --example dubbo2_load
port=18080
# The demo logs every request; the measurement does not.
GATEWAY_ACCESS_LOG__ENABLED=false target/release/gateway demo --port "$port" > /tmp/gateway-bench.log 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "gateway on" /tmp/gateway-bench.log 2>/dev/null && break; sleep 0.2; done
provider=$(sed -n 's/.*on dubbo:\/\/\([0-9.:]*\).*/\1/p' /tmp/gateway-bench.log | head -1)
url="http://127.0.0.1:$port/demo/org.apache.dubbo.demo.DemoService/sayHello"
curl -sf -X POST "$url" -d '["world"]' >/dev/null
# Warm-up, then the measured runs.
wrk -t1 -c"$conc" -d2s -s bench/sayhello.lua "$url" >/dev/null
gw_out=$(wrk -t1 -c"$conc" -d"${secs}s" --latency -s bench/sayhello.lua "$url")
direct=$(target/release/examples/dubbo2_load --addr "$provider" --concurrency "$conc" --duration "$secs")
python3 - "$gw_out" "$direct" "$conc" "$secs" <<'PY'
import json, re, sys
wrk, direct, conc, secs = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
def ms(label):
    m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)", wrk, re.M)
    v = float(m.group(1)); return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
print(f"HTTP/JSON -> Dubbo2 sayHello, {conc} concurrent, {secs}s each\n")
print("| path | req/s | p50 ms | p99 ms |")
print("|---|---|---|---|")
print(f"| wrk -> gateway -> provider | {rps:,.0f} | {ms(50):.2f} | {ms(99):.2f} |")
print(f"| direct Dubbo2 client -> provider (anchor) | {direct['rps']:,.0f} | {direct['p50_ms']:.2f} | {direct['p99_ms']:.2f} |")
print(f"\ngateway/direct throughput: {rps / direct['rps']:.2f}; errors: gateway {errors.group(1) if errors else 0}, direct {direct['errors']}")
PY
