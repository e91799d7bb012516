"""A Dubbo3 Triple provider on the official Python Dubbo (apache-dubbo), serving echo.Echo's
Unary and Fail (peers/proto/echo.proto) with protobuf serialization, and Greet with a custom
JSON serialization (Python Dubbo's per-method serializer functions; no IDL): the request
message is JSON `{"name": ...}`, the reply JSON `{"greeting": ..., "received": <request>}`.

    dubbo_triple_provider.py PORT     serves on 127.0.0.1:PORT; prints "LISTENING <port>"
"""
import json
import os
import sys
import time

import stubs as stubs_module

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "proto")


def stubs():
    stubs_module.load(PROTO_DIR, "echo.proto", grpc=False)
    import echo_pb2
    return echo_pb2


def main(port):
    import dubbo
    from dubbo.configs import ServiceConfig
    from dubbo.proxy.handlers import RpcMethodHandler, RpcServiceHandler

    pb = stubs()

    def unary(request):
        return pb.Msg(text=f"triple:{request.text}")

    def fail(request):
        raise ValueError(f"no {request.text}")

    def greet(request):
        if not isinstance(request, dict) or "name" not in request:
            raise ValueError("greet takes {\"name\": ...}")
        return {"greeting": f"hello {request['name']}", "received": request}

    handler = RpcServiceHandler(
        service_name="echo.Echo",
        method_handlers=[
            RpcMethodHandler.unary(unary, method_name="Unary",
                                   request_deserializer=pb.Msg.FromString,
                                   response_serializer=pb.Msg.SerializeToString),
            RpcMethodHandler.unary(fail, method_name="Fail",
                                   request_deserializer=pb.Msg.FromString,
                                   response_serializer=pb.Msg.SerializeToString),
            RpcMethodHandler.unary(greet, method_name="Greet",
                                   request_deserializer=json.loads,
                                   response_serializer=lambda o: json.dumps(o).encode()),
        ],
    )
    server = dubbo.Server(ServiceConfig(handler, host="127.0.0.1", port=port))
    server.start()
    print(f"LISTENING {port}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(int(sys.argv[1]))
