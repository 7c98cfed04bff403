"""A standard gRPC client (Python grpcio, stubs generated from proto/) against a devnet:
checks gRPC health and calls Compute.List with the devnet's client certificate.

usage: grpc_smoke.py DEVNET_DIR BASE_PORT
"""
import os
import sys
import tempfile
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main() -> None:
    devnet, base = sys.argv[1], int(sys.argv[2])
    out = tempfile.mkdtemp()
    rc = protoc.main(["", "-I", os.path.join(ROOT, "proto"), "--python_out", out,
                      "--grpc_python_out", out, "veil/v1/compute.proto"])
    if rc != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    from veil.v1 import compute_pb2, compute_pb2_grpc  # noqa: E402

    def read(name: str) -> bytes:
        with open(os.path.join(devnet, name), "rb") as f:
            return f.read()

    creds = grpc.ssl_channel_credentials(
        root_certificates=read("ca.pem"),
        private_key=read("client-alice.key.pem"),
        certificate_chain=read("client-alice.pem"),
    )
    deadline = time.time() + 60
    for party in range(3):
        channel = grpc.secure_channel(f"localhost:{base + party}", creds)
        while True:
            try:
                status = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=5)
                break
            except grpc.RpcError as e:
                if time.time() > deadline:
                    sys.exit(f"node {party} not healthy: {e}")
                time.sleep(0.2)
        if status.status != health_pb2.HealthCheckResponse.SERVING:
            sys.exit(f"node {party} reports {status.status}")
        listing = compute_pb2_grpc.ComputeStub(channel).List(compute_pb2.ListRequest(), timeout=5)
        print(f"node {party}: SERVING, {len(listing.values)} values, "
              f"{len(listing.programs)} programs, {len(listing.results)} results")
    # Malformed protobuf: raw garbage to a Compute method is refused with a status, and the node
    # keeps serving.
    channel = grpc.secure_channel(f"localhost:{base}", creds)
    raw = channel.unary_unary("/veil.v1.Compute/StoreValue",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        raw(b"\xff\xff\xff\xff\x0f", timeout=5)
        sys.exit("garbage request was accepted")
    except grpc.RpcError as e:
        print(f"malformed request refused: {e.code().name}: {e.details()}")
    compute_pb2_grpc.ComputeStub(channel).List(compute_pb2.ListRequest(), timeout=5)
    reflect(channel)
    print("grpcio smoke: ok")


def reflect(channel: grpc.Channel) -> None:
    """Server reflection as grpcio-reflection's descriptor database speaks it (`v1alpha`): the
    services are listed and `veil.v1.Compute` resolves to its methods."""
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    for want in ("veil.v1.Compute", "veil.v1.Retrieval", "veil.v1.Peer", "grpc.health.v1.Health"):
        if want not in services:
            sys.exit(f"reflection (v1alpha): {want} not listed; got {sorted(services)}")
    compute = DescriptorPool(db).FindServiceByName("veil.v1.Compute")
    methods = sorted(m.name for m in compute.methods)
    if "Invoke" not in methods or "StoreValue" not in methods:
        sys.exit(f"reflection (v1alpha): Compute methods {methods}")
    print(f"reflection (v1alpha): {len(services)} services; Compute has {', '.join(methods)}")


if __name__ == "__main__":
    main()
