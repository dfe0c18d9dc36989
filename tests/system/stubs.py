"""Python stubs for the Kontor protos, generated on the fly.

Used by the system tests that talk to kontord with an independent gRPC
implementation (Debian's python3-grpcio), so that the C++ code is checked
against the .proto files rather than against itself.

    import stubs
    pb = stubs.load(tmpdir)
    pb.local_pb2.SubmitRequest(...)
"""

import glob
import importlib
import os
import subprocess
import sys
import types

PROTOC = "/usr/bin/protoc"
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"
PROTO_ROOT = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto"))

MODULES = ("envelope_pb2", "local_pb2", "local_pb2_grpc", "federation_pb2",
           "federation_pb2_grpc", "config_pb2")


def load(out_dir):
    """Generates the stubs into out_dir, puts it on sys.path and returns a
    namespace with the modules named in MODULES as attributes."""
    for tool in (PROTOC, GRPC_PYTHON_PLUGIN):
        if not os.access(tool, os.X_OK):
            raise RuntimeError(
                f"{tool} is missing (apt-get install protobuf-compiler "
                "protobuf-compiler-grpc)")
    os.makedirs(out_dir, exist_ok=True)
    protos = sorted(
        os.path.relpath(p, PROTO_ROOT)
        for p in glob.glob(os.path.join(PROTO_ROOT, "kontor", "v1", "*.proto")))
    if not protos:
        raise RuntimeError(f"no .proto files under {PROTO_ROOT}/kontor/v1")
    cmd = [PROTOC, "-I", PROTO_ROOT, f"--python_out={out_dir}",
           f"--grpc_python_out={out_dir}",
           f"--plugin=protoc-gen-grpc_python={GRPC_PYTHON_PLUGIN}"] + protos
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"protoc failed ({result.returncode}): "
                           f"{' '.join(cmd)}\n{result.stderr}")
    # The generated code imports "kontor.v1.envelope_pb2": make them packages
    # (protoc does not write __init__.py; namespace packages would work too,
    # but a stale "kontor" package elsewhere on sys.path could shadow them).
    for pkg in ("kontor", os.path.join("kontor", "v1")):
        init = os.path.join(out_dir, pkg, "__init__.py")
        if not os.path.exists(init):
            open(init, "w").close()
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    importlib.invalidate_caches()
    ns = types.SimpleNamespace()
    for name in MODULES:
        setattr(ns, name, importlib.import_module(f"kontor.v1.{name}"))
    return ns


REFLECTION_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "proto")


def load_reflection(out_dir):
    """Generates stubs for gRPC server reflection (v1alpha, from
    tests/system/proto) into out_dir and returns (reflection_pb2,
    reflection_pb2_grpc)."""
    os.makedirs(out_dir, exist_ok=True)
    # The file sits at the root (not grpc/reflection/v1alpha/): modules in a
    # package named "grpc" would shadow grpcio's. The service name on the
    # wire comes from the package line, not the path.
    cmd = [PROTOC, "-I", REFLECTION_ROOT, f"--python_out={out_dir}",
           f"--grpc_python_out={out_dir}",
           f"--plugin=protoc-gen-grpc_python={GRPC_PYTHON_PLUGIN}",
           "reflection_v1alpha.proto"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"protoc failed ({result.returncode}): "
                           f"{' '.join(cmd)}\n{result.stderr}")
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    importlib.invalidate_caches()
    return (importlib.import_module("reflection_v1alpha_pb2"),
            importlib.import_module("reflection_v1alpha_pb2_grpc"))

if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory(prefix="kontor-stubs.") as d:
        m = load(d)
        print(" ".join(sorted(vars(m))))
