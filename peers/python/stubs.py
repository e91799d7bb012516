"""Python stubs for the project's .proto files, generated at run time with grpcio-tools (no
generated code is checked in)."""
import os
import sys
import tempfile

from grpc_tools import protoc


def load(proto_dir, proto_file, grpc=True):
    """Compiles `proto_file` (in `proto_dir`) into a temporary directory and makes its modules
    importable; returns nothing (import `<name>_pb2` / `<name>_pb2_grpc` afterwards)."""
    out = tempfile.mkdtemp(prefix="stubs-")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = ["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}"]
    if grpc:
        args.append(f"--grpc_python_out={out}")
    if protoc.main(args + [os.path.join(proto_dir, proto_file)]) != 0:
        sys.exit(f"protoc failed on {proto_file}")
    sys.path.insert(0, out)
