"""The gRPC server bootstrap both sides use: a grpc.aio server with the given services, standard health
checking (every service and "" SERVING once started) and server reflection, so `buf curl` and grpcurl work."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection


async def start_server(services: Sequence[tuple[Callable[[object, grpc.aio.Server], None], object, str]],
                       listen: str = "127.0.0.1:0",
                       options: Sequence[tuple[str, object]] = ()) -> tuple[grpc.aio.Server, int]:
    """Start a server on `listen` ("host:port"; port 0 picks a free one) serving each (add_XServicer_to_server,
    servicer, full service name); returns (server, bound port). OSError if the address cannot be bound."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0), *options])
    for add, servicer, _ in services:
        add(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [name for _, _, name in services]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    for name in (*names, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port
