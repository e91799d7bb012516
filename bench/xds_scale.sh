#!/usr/bin/env bash
# xDS at scale: 10,000 clusters and 100,000 endpoints served by `gateway control-plane`; the time
# until a client holds all of it, and its peak memory, for our client (xds-core) and for Envoy
# 1.40 fed the same snapshot by the same server, in the same run. One client at a time.
#   bench/xds_scale.sh [clusters] [endpoints-per-cluster]
set -euo pipefail
cd "$(dirname "$0")/.."
clusters="${1:-10000}"
per="${2:-10}"
total=$((clusters * per))
scripts/install-peers.sh
cargo build --release -p gateway --bin gateway >&2
cargo build --release -p xds-core --example scale_client >&2
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
python3 bench/xds_scale.py "$work/snapshot.json" "$clusters" "$per" >&2
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/release/gateway control-plane --snapshot "$work/snapshot.json" --listen "127.0.0.1:$port" > "$work/cp.log" 2>&1 &
for _ in $(seq 600); do grep -q "control plane serving" "$work/cp.log" && break; sleep 0.1; done
grep -q "control plane serving" "$work/cp.log" || { cat "$work/cp.log" >&2; exit 1; }

ours=$(target/release/examples/scale_client "127.0.0.1:$port" "$clusters" "$total")
ours_delta=$(target/release/examples/scale_client "127.0.0.1:$port" "$clusters" "$total" --delta)

admin=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/envoy.yaml" <<YAML
node: {id: scale-envoy, cluster: bench}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: $admin}}}
dynamic_resources:
  ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}
  cds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        '@type': type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {max_concurrent_streams: 100}}
    load_assignment:
      cluster_name: xds
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $port}}}}]}]
YAML
start=$(date +%s%N)
peers/python/.venv/bin/envoy -c "$work/envoy.yaml" --concurrency 1 --base-id $RANDOM --log-level error > "$work/envoy.log" 2>&1 &
envoy_pid=$!
envoy_ms=""
for _ in $(seq 6000); do
  stats=$(curl -s "http://127.0.0.1:$admin/stats?filter=^cluster_manager\.(active|warming)_clusters$" || true)
  active=$(echo "$stats" | awk -F': ' '/active_clusters/ {print $2}')
  warming=$(echo "$stats" | awk -F': ' '/warming_clusters/ {print $2}')
  # The static xds cluster counts as active too.
  if [ "${active:-0}" -ge $((clusters + 1)) ] && [ "${warming:-1}" -eq 0 ]; then
    envoy_ms=$(( ($(date +%s%N) - start) / 1000000 ))
    break
  fi
  sleep 0.05
done
[ -n "$envoy_ms" ] || { echo "Envoy did not apply the snapshot" >&2; tail "$work/envoy.log" >&2; exit 1; }
envoy_kib=$(awk '/VmHWM/ {print $2}' "/proc/$envoy_pid/status")
kill "$envoy_pid"

python3 - "$ours" "$ours_delta" "$envoy_ms" "$envoy_kib" "$clusters" "$total" <<'PY'
import json, sys
ours, delta = json.loads(sys.argv[1]), json.loads(sys.argv[2])
envoy_ms, envoy_kib, clusters, total = map(int, sys.argv[3:7])
print(f"xDS scale: {clusters:,} clusters, {total:,} endpoints (EDS), one client at a time\n")
print("| client | time to all applied | peak RSS | time vs Envoy | memory vs Envoy |")
print("|---|---|---|---|---|")
for name, r in [("xds-core, state of the world", ours), ("xds-core, delta", delta)]:
    print(f"| {name} | {r['applied_ms']:,} ms | {r['peak_rss_kib']/1024:,.0f} MiB | {r['applied_ms']/envoy_ms:.2f}x | {r['peak_rss_kib']/envoy_kib:.2f}x |")
print(f"| Envoy 1.40 (anchor) | {envoy_ms:,} ms | {envoy_kib/1024:,.0f} MiB | 1.00x | 1.00x |")
PY
