#!/usr/bin/env bash
# What operations features cost: HTTP/JSON -> Dubbo2 through the gateway with everything off
# (the anchor), with OpenTelemetry tracing on (every request sampled, spans exported over OTLP
# to a counting sink), and with JSON access logs to a file. Same provider, same wrk settings,
# variants alternated over two rounds in one run; prints a markdown table with the ratios.
#   bench/ops.sh [seconds] [concurrency]
# Placement: wrk (1 thread), the gateway, the provider and the OTLP sink share this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-5}"
conc="${2:-32}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p gateway --bin gateway -p testkit --example dubbo2_demo --example otlp_sink
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

provider_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/release/examples/dubbo2_demo --port "$provider_port" > "$work/provider.log" 2>&1 &
pids+=($!)
target/release/examples/otlp_sink > "$work/sink.log" 2>&1 &
sink=$!
pids+=($sink)
for _ in $(seq 50); do grep -q LISTENING "$work/sink.log" && grep -q listening "$work/provider.log" && break; sleep 0.2; done
sink_port=$(sed -n 's/^LISTENING //p' "$work/sink.log")

run_variant() { # name, extra yaml -> "rps p50 p99"
  local name=$1 extra=$2 port=18090
  cat > "$work/$name.yaml" <<YAML
listeners: [{name: http, address: '127.0.0.1:$port'}]
admin: {address: ''}
metadata: {backend: memory, grpc_address: ''}
clusters: [{name: demo, endpoints: ['127.0.0.1:$provider_port']}]
routes: [{application: demo, cluster: demo}]
$extra
YAML
  RUST_LOG=warn target/release/gateway run --config "$work/$name.yaml" > "$work/$name.log" 2>&1 &
  local gw=$!
  local url="http://127.0.0.1:$port/demo/org.apache.dubbo.demo.DemoService/sayHello"
  for _ in $(seq 50); do curl -sf -X POST "$url" -d '["x"]' >/dev/null 2>&1 && break; sleep 0.1; done
  wrk -t1 -c"$conc" -d2s -s bench/sayhello.lua "$url" >/dev/null
  local out
  out=$(wrk -t1 -c"$conc" -d"${secs}s" --latency -s bench/sayhello.lua "$url")
  kill $gw; wait $gw 2>/dev/null || true
  python3 - "$out" <<'PY'
import re, sys
wrk = sys.argv[1]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
def ms(label):
    m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)", wrk, re.M)
    v = float(m.group(1)); return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
print(rps, ms(50), ms(99), bad.group(1) if bad else 0)
PY
}

declare -A results
variants=(off tracing access_log)
declare -A extra=(
  [off]=""
  [tracing]="tracing: {enabled: true, otlp_endpoint: 'http://127.0.0.1:$sink_port', sampling_ratio: 1.0}"
  [access_log]="access_log: {enabled: true, path: '$work/access.log'}"
)
for round in 1 2; do
  for v in "${variants[@]}"; do
    results[$v]+="$(run_variant "$v" "${extra[$v]}");"
  done
done
kill -TERM $sink; wait $sink 2>/dev/null || true
spans=$(sed -n 's/^spans //p' "$work/sink.log")
python3 - "$conc" "$secs" "$spans" "${results[off]}" "${results[tracing]}" "${results[access_log]}" <<'PY'
import sys
conc, secs, spans = sys.argv[1], sys.argv[2], sys.argv[3]
def mean(s):
    rows = [list(map(float, r.split())) for r in s.split(";") if r.strip()]
    return [sum(c) / len(c) for c in zip(*rows)]
off, tracing, access = (mean(s) for s in sys.argv[4:7])
print(f"HTTP/JSON -> Dubbo2 sayHello through the gateway, {conc} concurrent, {secs}s x 2 rounds each (mean)\n")
print("| variant | req/s | p50 ms | p99 ms | vs off |")
print("|---|---|---|---|---|")
for name, r in [("everything off (anchor)", off), ("tracing on, 100% sampled, OTLP export", tracing), ("JSON access log to a file", access)]:
    print(f"| {name} | {r[0]:,.0f} | {r[1]:.2f} | {r[2]:.2f} | {r[0] / off[0]:.2f} |")
print(f"\nspans received by the OTLP sink: {spans}; non-2xx: off {off[3]:.0f}, tracing {tracing[3]:.0f}, access log {access[3]:.0f}")
PY
