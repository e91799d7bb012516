#!/usr/bin/env bash
# A/B of two gateway builds on the gRPC paths, alternated in one run: gRPC proxying (h2load,
# 8 connections x 4 streams) and HTTP/JSON -> gRPC (wrk, 32 connections), same backend. Per
# round and build: req/s, CPU seconds per 10k requests of the gateway, the backend and the load
# generator, and how idle the machine was. How steps 8 and 9 in docs/benchmarks.md were
# measured.
#   git worktree add /tmp/base <commit> && (cd /tmp/base && cargo build --release -p gateway)
#   bench/ab_grpc.sh /tmp/base/target/release/gateway [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:?usage: bench/ab_grpc.sh BASE_GATEWAY_BINARY [seconds] [rounds]}"
secs="${2:-6}"
rounds="${3:-2}"
scripts/install-peers.sh >/dev/null
cargo build --release -q -p gateway --bin gateway
cargo build --release -q -p testkit --example grpc_echo_backend
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
peers/python/.venv/bin/python -m grpc_tools.protoc -Ipeers/proto --include_imports \
  --descriptor_set_out="$work/echo.pb" peers/proto/echo.proto
printf '\x00\x00\x00\x00\x04\x0a\x02hi' > "$work/frame.bin"   # Msg{text: "hi"}
target/release/examples/grpc_echo_backend --threads 1 > "$work/backend.log" &
backend_pid=$!
for _ in $(seq 100); do grep -q LISTENING "$work/backend.log" && break; sleep 0.05; done
backend=$(awk '/LISTENING/ {print $2}' "$work/backend.log")

start() { # name binary -> port (pid in $work/name.pid)
  local port; port=$(free)
  cat > "$work/$1.yaml" <<Y
workers: 2
admin: {address: ''}
metadata: {backend: memory, grpc_address: ''}
listeners: [{name: http, address: '127.0.0.1:$port'}]
descriptor_sets: ['$work/echo.pb']
clusters: [{name: echo, protocol: grpc, endpoints: ['127.0.0.1:$backend']}]
grpc_routes: [{prefix: /echo.Echo/, cluster: echo}]
Y
  RUST_LOG=warn "$2" run --config "$work/$1.yaml" > "$work/$1.log" 2>&1 &
  echo $! > "$work/$1.pid"
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  echo "$port"
}
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
busy() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8, $5}' /proc/stat; }

measure() { # name pid kind port
  local g0 e0 c0 g1 e1 c1 out rate load
  g0=$(ticks "$2"); e0=$(ticks "$backend_pid"); read -r c0 i0 < <(busy)
  if [ "$3" = grpc ]; then
    out=$( { /usr/bin/time -f "LOADCPU %U %S" h2load -D "$secs" -c 8 -m 4 -t 1 -d "$work/frame.bin" \
      -H "content-type: application/grpc" -H "te: trailers" "http://127.0.0.1:$4/echo.Echo/Unary"; } 2>&1)
    rate=$(echo "$out" | awk '/finished in/ {print $4}')
  else
    out=$( { /usr/bin/time -f "LOADCPU %U %S" wrk -t1 -c32 -d"${secs}s" -s bench/echo_json.lua \
      "http://127.0.0.1:$4/echo.Echo/Unary"; } 2>&1)
    rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  fi
  load=$(echo "$out" | awk '/LOADCPU/ {print $2+$3}')
  g1=$(ticks "$2"); e1=$(ticks "$backend_pid"); read -r c1 i1 < <(busy)
  python3 - "$1" "$3" "$rate" "$secs" "$((g1-g0))" "$((e1-e0))" "$load" "$((c1-c0))" "$((i1-i0))" <<'P'
import sys
name, kind, rate, secs, g, e, load, total, idle = sys.argv[1:]
n = float(rate) * float(secs) / 1e4
print(f"{name:5} {kind:10} {float(rate):9,.0f} req/s   CPU s/10k: gateway {int(g)/100/n:.3f}"
      f"  backend {int(e)/100/n:.3f}  load {float(load)/n:.3f}   idle {100*int(idle)/max(int(total),1):.0f}%")
P
}

a=$(start base "$base"); b=$(start new target/release/gateway)
sleep 1
for round in $(seq "$rounds"); do
  for kind in grpc json; do
    measure base "$(cat "$work/base.pid")" "$kind" "$a"
    measure new "$(cat "$work/new.pid")" "$kind" "$b"
  done
done
