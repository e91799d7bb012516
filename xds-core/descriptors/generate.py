"""Regenerates envoy.bin: the protobuf descriptors of the Envoy v3 resources xds-core reads from
JSON/YAML (listeners, routes, clusters, endpoints, the HTTP connection manager, the router filter,
the discovery messages, typed structs), with everything they import and without source info.

The descriptors come from the `envoy-types` crate (its src/generated/types.bin, the full set its
Rust types were generated from), so JSON parsing and the Rust types always agree. Run after
changing the envoy-types version:

    python3 xds-core/descriptors/generate.py   # needs the `protobuf` package (peers/python/.venv has it)
"""
import json
import os
import subprocess
import sys

from google.protobuf import descriptor_pb2

ROOTS = [
    "envoy/config/listener/v3/listener.proto",
    "envoy/config/route/v3/route.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/service/discovery/v3/discovery.proto",
]

here = os.path.dirname(os.path.abspath(__file__))
meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--locked"], cwd=here))
crate = next(p for p in meta["packages"] if p["name"] == "envoy-types")
source = os.path.join(os.path.dirname(crate["manifest_path"]), "src", "generated", "types.bin")

full = descriptor_pb2.FileDescriptorSet()
full.ParseFromString(open(source, "rb").read())
by_name = {f.name: f for f in full.file}
roots = ROOTS + [n for n in by_name if n.startswith("udpa/type/") or n == "xds/type/v3/typed_struct.proto"]
keep = set()

def walk(name):
    if name in keep or name not in by_name:
        return
    keep.add(name)
    for dep in by_name[name].dependency:
        walk(dep)

for root in roots:
    if root not in by_name:
        sys.exit(f"{root} is not in {source}")
    walk(root)
out = descriptor_pb2.FileDescriptorSet()
for f in full.file:  # dependency order is preserved
    if f.name in keep:
        g = descriptor_pb2.FileDescriptorProto()
        g.CopyFrom(f)
        g.ClearField("source_code_info")
        out.file.append(g)
open(os.path.join(here, "envoy.bin"), "wb").write(out.SerializeToString())
print(f"envoy.bin: {len(out.file)} files from envoy-types {crate['version']}")
