#!/usr/bin/env bash
# The benchmark suite (bench/run.py): builds in release mode, installs the load generators and
# the anchors (wrk, h2load, nginx; Envoy comes with the Python peers), runs every scenario with
# its anchor in one run, and writes the results table to docs/benchmarks.md and the plot to
# docs/bench-suite.svg.
#   bench/run.sh [seconds] [concurrency]        (defaults: 10 32; about 10 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v nginx >/dev/null || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  # Debian starts nginx as a service on install; the suite runs its own.
  as_root service nginx stop >/dev/null 2>&1 || true
fi
cargo build --release -q -p gateway --bin gateway
cargo build --release -q -p testkit --example dubbo2_demo --example dubbo2_load \
  --example http_backend --example grpc_echo_backend
exec python3 bench/run.py "$@"
