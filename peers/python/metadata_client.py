"""A real gRPC client of the gateway's metadata API (pixiu.pkg.metadata), built with grpcio
from stubs that grpcio-tools generates from metadata-store/proto/metadata.proto at start.

Usage: metadata_client.py TARGET [--token T] COMMAND_JSON...
Each command is a JSON object; one JSON line is printed per command:
  {"call": "publish_metadata", "application_name", "revision", "metadata_info"}
  {"call": "get_metadata", "application_name", "revision"}
  {"call": "publish_definition", "identifier", "service_definition"}
  {"call": "get_definition", "identifier"}
Output: {"ok": true, "response": {...}} or {"ok": false, "code": "NOT_FOUND", "details": "..."}.
"""
import json
import os
import sys

import grpc
from google.protobuf import json_format

import stubs as stubs_module

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "metadata-store", "proto")


def stubs():
    stubs_module.load(PROTO_DIR, "metadata.proto")
    import metadata_pb2, metadata_pb2_grpc  # noqa: E401
    return metadata_pb2, metadata_pb2_grpc


def main():
    args = sys.argv[1:]
    target = args.pop(0)
    token = None
    if args and args[0] == "--token":
        args.pop(0)
        token = args.pop(0)
    pb, rpc = stubs()
    channel = grpc.insecure_channel(target)
    meta = rpc.MetadataServiceStub(channel)
    defs = rpc.ServiceDefinitionServiceStub(channel)
    md = [("authorization", f"Bearer {token}")] if token else None
    calls = {
        "publish_metadata": lambda c: meta.Publish(pb.PublishMetadataRequest(
            application_name=c["application_name"], revision=c["revision"],
            metadata_info=c["metadata_info"]), metadata=md, timeout=10),
        "get_metadata": lambda c: meta.Get(pb.GetMetadataRequest(
            application_name=c["application_name"], revision=c["revision"]), timeout=10),
        "publish_definition": lambda c: defs.Publish(pb.PublishServiceDefinitionRequest(
            identifier=c["identifier"], service_definition=c["service_definition"]),
            metadata=md, timeout=10),
        "get_definition": lambda c: defs.Get(pb.GetServiceDefinitionRequest(
            identifier=c["identifier"]), timeout=10),
    }
    for raw in args:
        command = json.loads(raw)
        try:
            response = calls[command["call"]](command)
            body = json_format.MessageToDict(response, preserving_proto_field_name=True)
            print(json.dumps({"ok": True, "response": body}), flush=True)
        except grpc.RpcError as e:
            print(json.dumps({"ok": False, "code": e.code().name, "details": e.details()}),
                  flush=True)


if __name__ == "__main__":
    main()
