#!/usr/bin/env bash
# gRPC through the gateway beside Envoy 1.40, same backend, same run, contenders one at a time:
#   1. HTTP/JSON -> proxy -> gRPC backend: the gateway's transcoding vs Envoy's grpc_json_transcoder
#      (auto_mapping, the same descriptor set);
#   2. gRPC -> proxy -> gRPC backend: plain gRPC proxying.
# The backend (testkit/examples/grpc_echo_backend.rs) is also measured directly, to show it is
# not the bottleneck. Load: wrk for JSON, h2load for gRPC (8 connections x 4 streams), same
# concurrency for every contender. Every proxy gets 2 worker threads (the gateway's runtime
# default here, Envoy --concurrency 2); load generator, proxy and backend share the 2 cores.
#   bench/grpc.sh [seconds] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conc="${2:-32}"
scripts/install-peers.sh
command -v wrk >/dev/null && command -v h2load >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nghttp2-client >/dev/null; }
cargo build --release -q -p gateway --bin gateway
cargo build --release -q -p testkit --example grpc_echo_backend
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

peers/python/.venv/bin/python -m grpc_tools.protoc -Ipeers/proto --include_imports \
  --descriptor_set_out="$work/echo.pb" peers/proto/echo.proto
printf '\x00\x00\x00\x00\x04\x0a\x02hi' > "$work/frame.bin"   # Msg{text: "hi"}

target/release/examples/grpc_echo_backend --threads 1 > "$work/backend.log" &
for _ in $(seq 100); do grep -q LISTENING "$work/backend.log" && break; sleep 0.05; done
backend=$(awk '/LISTENING/ {print $2}' "$work/backend.log")

gw=$(free)
cat > "$work/gateway.yaml" <<YAML
listeners: [{name: http, address: "127.0.0.1:$gw"}]
admin: {address: ""}
metadata: {backend: memory, grpc_address: ""}
descriptor_sets: ["$work/echo.pb"]
clusters: [{name: echo, protocol: grpc, endpoints: ["127.0.0.1:$backend"]}]
grpc_routes: [{prefix: /echo.Echo/, cluster: echo}]
YAML
RUST_LOG=warn target/release/gateway run --config "$work/gateway.yaml" > "$work/gateway.log" 2>&1 &

ej=$(free); eg=$(free); ea=$(free)
hcm() { # name port filters
cat <<YAML
  - name: $1
    address: {socket_address: {address: 127.0.0.1, port_value: $2}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $1
          route_config: {virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: backend, timeout: 5s}}]}]}
          http_filters:
$3
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
YAML
}
{
  echo "admin: {address: {socket_address: {address: 127.0.0.1, port_value: $ea}}}"
  echo "static_resources:"
  echo "  listeners:"
  hcm json "$ej" "          - name: envoy.filters.http.grpc_json_transcoder
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder
              proto_descriptor: $work/echo.pb
              services: [echo.Echo]
              auto_mapping: true"
  hcm grpc "$eg" ""
  cat <<YAML
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: backend
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $backend}}}}]}]
YAML
} > "$work/envoy.yaml"
peers/python/.venv/bin/envoy -c "$work/envoy.yaml" --concurrency 2 --base-id $RANDOM --log-level error > "$work/envoy.log" 2>&1 &

for _ in $(seq 200); do
  curl -sf "http://127.0.0.1:$ea/ready" >/dev/null 2>&1 && curl -sf -X POST "http://127.0.0.1:$gw/echo.Echo/Unary" -d '{"text":"hi"}' >/dev/null 2>&1 && break
  sleep 0.1
done
for target in "$gw" "$ej"; do
  answer=$(curl -sf -X POST -H 'content-type: application/json' "http://127.0.0.1:$target/echo.Echo/Unary" -d '{"text":"hi"}')
  echo "$answer" | grep -q 'unary:hi' || { echo "bad answer from :$target: $answer" >&2; cat "$work"/*.log >&2; exit 1; }
done

json_run() { wrk -t1 -c"$conc" -d"${secs}s" --latency -s bench/echo_json.lua "http://127.0.0.1:$1/echo.Echo/Unary"; }
grpc_run() {
  h2load -D "$secs" -c 8 -m $((conc / 8)) -t 1 -d "$work/frame.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' --log-file="$work/h2-$1.log" \
    "http://127.0.0.1:$1/echo.Echo/Unary" > "$work/h2-$1.out"
}
# Warm-ups, then the measured runs, contenders alternating.
json_run "$gw" >/dev/null; json_run "$ej" >/dev/null
gj=$(json_run "$gw"); ejo=$(json_run "$ej")
grpc_run "$gw"; grpc_run "$eg"; grpc_run "$backend"

python3 - "$gj" "$ejo" "$work" "$gw" "$eg" "$backend" "$conc" "$secs" <<'PY'
import re, statistics, sys
gj, ej, work, gw, eg, backend, conc, secs = sys.argv[1:9]
def wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def ms(p):
        m = re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        v = float(m.group(1)); return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, ms(50), ms(99), int(bad.group(1)) if bad else 0
def h2(port):
    out = open(f"{work}/h2-{port}.out").read()
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    lat = sorted(int(l.split()[2]) for l in open(f"{work}/h2-{port}.log") if l.strip())
    failed = int(re.search(r"requests: .* (\d+) failed", out).group(1))
    return rps, lat[len(lat) // 2] / 1000, lat[int(len(lat) * 0.99)] / 1000, failed
rows = [("HTTP/JSON -> gateway -> gRPC", wrk(gj)), ("HTTP/JSON -> Envoy grpc_json_transcoder -> gRPC (anchor)", wrk(ej)),
        ("gRPC -> gateway -> gRPC", h2(gw)), ("gRPC -> Envoy -> gRPC (anchor)", h2(eg)),
        ("gRPC -> backend directly (ceiling)", h2(backend))]
print(f"gRPC scenarios, {conc} concurrent, {secs}s each\n")
print("| path | req/s | p50 ms | p99 ms | failed | req/s vs Envoy |")
print("|---|---|---|---|---|---|")
for i, (name, (rps, p50, p99, bad)) in enumerate(rows):
    anchor = rows[1][1][0] if i < 2 else rows[3][1][0]
    ratio = f"{rps / anchor:.2f}x" if i < 4 else ""
    print(f"| {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {bad} | {ratio} |")
PY
