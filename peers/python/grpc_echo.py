"""The gRPC Echo service (peers/proto/echo.proto) on grpcio, as server or client; stubs are
generated at start with grpcio-tools. The server also serves gRPC server reflection
(grpcio-reflection, v1alpha).

  grpc_echo.py server          serves on a free port; prints "LISTENING <port>"
  grpc_echo.py client TARGET   calls every kind through TARGET; prints one JSON line
"""
import json
import os
import sys
import time

import grpc

import stubs as stubs_module

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "proto")


def stubs():
    stubs_module.load(PROTO_DIR, "echo.proto")
    import echo_pb2, echo_pb2_grpc  # noqa: E401
    return echo_pb2, echo_pb2_grpc


def server():
    from concurrent import futures
    pb, rpc = stubs()

    class Echo(rpc.EchoServicer):
        def Unary(self, request, context):
            trace = dict(context.invocation_metadata()).get("x-trace", "")
            context.set_trailing_metadata((("x-trace-echo", trace),))
            reply = pb.Msg(text=f"unary:{request.text}")
            if request.HasField("at"):
                reply.at.CopyFrom(request.at)
            return reply

        def ServerStream(self, request, context):
            for i in range(request.count):
                yield pb.Msg(text=f"{request.text}{i}")

        def ClientStream(self, request_iterator, context):
            return pb.Msg(text=",".join(m.text for m in request_iterator))

        def Bidi(self, request_iterator, context):
            for m in request_iterator:
                yield pb.Msg(text=f"bidi:{m.text}")

        def Fail(self, request, context):
            context.abort(grpc.StatusCode.NOT_FOUND, f"no {request.text}")

        def Slow(self, request, context):
            time.sleep(request.count / 1000)
            return pb.Msg(text="slow")

    s = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    rpc.add_EchoServicer_to_server(Echo(), s)
    from grpc_reflection.v1alpha import reflection
    names = (pb.DESCRIPTOR.services_by_name["Echo"].full_name, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, s)
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    print(f"LISTENING {port}", flush=True)
    s.wait_for_termination()


def client(target):
    pb, rpc = stubs()
    stub = rpc.EchoStub(grpc.insecure_channel(target))
    out = {}
    reply, call = stub.Unary.with_call(pb.Msg(text="hi"), metadata=(("x-trace", "t-1"),), timeout=10)
    out["unary"] = reply.text
    out["trailer"] = dict(call.trailing_metadata()).get("x-trace-echo")
    out["server_stream"] = [m.text for m in stub.ServerStream(pb.Msg(text="s", count=3), timeout=10)]
    out["client_stream"] = stub.ClientStream(iter([pb.Msg(text=t) for t in "abc"]), timeout=10).text
    out["bidi"] = [m.text for m in stub.Bidi(iter([pb.Msg(text=t) for t in "xy"]), timeout=10)]
    for name, call in [("fail", lambda: stub.Fail(pb.Msg(text="thing"), timeout=10)),
                       ("deadline", lambda: stub.Slow(pb.Msg(count=2000), timeout=0.3))]:
        try:
            call()
            out[name] = {"code": "OK"}
        except grpc.RpcError as e:
            out[name] = {"code": e.code().name, "details": e.details()}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server()
    else:
        client(sys.argv[2])
