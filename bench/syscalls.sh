#!/usr/bin/env bash
# System calls and context switches per request, counted by `perf stat` on the proxy's
# process while wrk runs (32 connections): HTTP proxying through the gateway and through
# nginx (same backend), and HTTP/JSON -> Dubbo2 through the gateway. How the figures in
# docs/benchmarks.md ("Where the time goes") were measured. Needs perf, wrk and nginx
# (bench/run.sh installs them), and permission to read syscall tracepoints (root; or
# kernel.perf_event_paranoid <= 1 with read access to tracefs).
#   bench/syscalls.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-4}"
for tool in perf wrk nginx; do
  command -v "$tool" >/dev/null || { echo "needs $tool (bench/run.sh installs wrk and nginx)" >&2; exit 1; }
done
perf stat -e syscalls:sys_enter_read -- true >/dev/null 2>&1 ||
  { echo "perf cannot read syscall tracepoints: run as root (see the header)" >&2; exit 1; }
scripts/install-peers.sh >/dev/null
cargo build --release -q -p gateway --bin gateway
cargo build --release -q -p testkit --example http_backend --example dubbo2_demo
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port name
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "$2 did not start listening on $1" >&2; return 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# Every system call (raw_syscalls), then the ones on the hot path by name.
events=raw_syscalls:sys_enter,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_writev,syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_futex,context-switches

count() { # label pids url [lua] : perf stat on pids while wrk runs; per-request rates
  local label=$1 pids=$2 url=$3 script=${4:-} out stats rate
  wrk -t1 -c32 -d1s ${script:+-s "$script"} "$url" > /dev/null
  wrk -t1 -c32 -d"$((secs + 2))s" ${script:+-s "$script"} "$url" > "$work/wrk.out" &
  sleep 1
  stats=$(perf stat -x, -e "$events" -p "$pids" -- sleep "$secs" 2>&1 >/dev/null) ||
    { echo "$stats" >&2; exit 1; }
  wait $!
  # wrk's rate over its whole run stands for the rate in perf's window (steady state).
  rate=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  echo "$label: $rate req/s; per request:"
  echo "$stats" | awk -F, -v r="$rate" -v s="$secs" \
    '$1 ~ /^[0-9]+$/ && $1 > 0 { sub("raw_syscalls:sys_enter", "all system calls", $3);
       sub("syscalls:sys_enter_", "", $3); printf "  %-16s %.2f\n", $3, $1 / (r * s) }'
}

backend=$(free)
target/release/examples/http_backend --port "$backend" --threads 1 > /dev/null &
wait_port "$backend" "the HTTP backend"

gw=$(free)
cat > "$work/gw.yaml" <<Y
workers: 2
admin: {address: ''}
metadata: {backend: memory, grpc_address: ''}
listeners: [{name: http, address: '127.0.0.1:$gw'}]
clusters: [{name: web, protocol: http, endpoints: ['127.0.0.1:$backend']}]
http_routes: [{prefix: /, cluster: web}]
Y
RUST_LOG=warn target/release/gateway run --config "$work/gw.yaml" > "$work/gw.log" 2>&1 &
gw_pid=$!
wait_port "$gw" "the gateway"
count "gateway, HTTP proxying" "$gw_pid" "http://127.0.0.1:$gw/"
stop "$gw_pid"

ng=$(free)
cat > "$work/nginx.conf" <<N
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  upstream be { server 127.0.0.1:$backend; keepalive 256; }
  server {
    listen 127.0.0.1:$ng;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
N
nginx -c "$work/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
wait_port "$ng" "nginx"
# The master listens before it forks: wait for both workers.
for _ in $(seq 100); do [ "$(pgrep -c -P "$nginx_pid")" -ge 2 ] && break; sleep 0.05; done
count "nginx, HTTP proxying" "$(pgrep -d, -P "$nginx_pid")" "http://127.0.0.1:$ng/"
stop "$nginx_pid"

provider=$(free)
target/release/examples/dubbo2_demo --port "$provider" > /dev/null &
wait_port "$provider" "the Dubbo2 provider"
gd=$(free)
cat > "$work/gd.yaml" <<Y
workers: 2
admin: {address: ''}
metadata: {backend: memory, grpc_address: ''}
listeners: [{name: http, address: '127.0.0.1:$gd'}]
clusters: [{name: demo, endpoints: ['127.0.0.1:$provider']}]
routes: [{application: demo, cluster: demo}]
services: [{interface: org.apache.dubbo.demo.DemoService, methods: [{name: sayHello, params: [{type: java.lang.String}]}]}]
Y
RUST_LOG=warn target/release/gateway run --config "$work/gd.yaml" > "$work/gd.log" 2>&1 &
gd_pid=$!
wait_port "$gd" "the gateway"
count "gateway, HTTP/JSON -> Dubbo2" "$gd_pid" \
  "http://127.0.0.1:$gd/demo/org.apache.dubbo.demo.DemoService/sayHello" bench/sayhello.lua
