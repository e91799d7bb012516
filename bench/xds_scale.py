"""Writes the xDS scale snapshot: N EDS clusters with M endpoints each (127.x.y.z:20880, so
nothing is dialled), as a `gateway control-plane` snapshot document.

    python3 bench/xds_scale.py OUT.json [CLUSTERS] [ENDPOINTS_PER_CLUSTER]
"""
import json
import sys

out = sys.argv[1]
clusters = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
per = int(sys.argv[3]) if len(sys.argv) > 3 else 10
resources = []
for c in range(clusters):
    name = f"outbound|20880||svc-{c}.shop.svc.cluster.local"
    resources.append({"@type": "envoy.config.cluster.v3.Cluster", "name": name, "type": "EDS",
                      "connect_timeout": "1s", "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}}})
    eps = []
    for e in range(per):
        n = c * per + e
        eps.append({"endpoint": {"address": {"socket_address": {
            "address": f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}", "port_value": 20880}}},
            "metadata": {"filter_metadata": {"dubbo": {"application": f"svc-{c}", "revision": "r1"}}}})
    resources.append({"@type": "envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name": name,
                      "endpoints": [{"locality": {"zone": "a"}, "lb_endpoints": eps}]})
json.dump({"version": "scale-1", "resources": resources}, open(out, "w"))
print(f"{out}: {clusters} clusters, {clusters * per} endpoints")
