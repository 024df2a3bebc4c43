"""The gRPC server bootstrap both sides use: a grpc.aio server with the given services, standard health
checking (every service and "" SERVING once started), server reflection (grpc.reflection.v1 and v1alpha, so
`buf curl`, grpcurl and newer clients work), a bound on concurrent calls, the caller checks of
`security.ServerSecurity`, request decoding that answers INVALID_ARGUMENT for malformed bytes, and (given an
`rpcmetrics.RpcMetrics`) calls counted per method and status code, unary ones timed.

gRPC decodes a request before the method runs and answers a decode failure with UNKNOWN ("Unexpected <class
'DecodeError'>"); `_Guard` hands each method its raw bytes instead and decodes them inside, so the status is
INVALID_ARGUMENT as the API promises, and it checks the caller before anything is decoded.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Sequence

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from pagetide.common.rpcmetrics import RpcMetrics, status_of
from pagetide.common.security import ServerSecurity, listen_error

# Calls in progress per server; more are refused with RESOURCE_EXHAUSTED. Each host a controller manages holds
# one long poll and at most a move on its agent, so this admits 1000 hosts per agent process or watchers per
# controller with room to spare, while bounding the memory a flood of calls can take.
MAX_CONCURRENT_RPCS = 2048

REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


class _Guard(grpc.aio.ServerInterceptor):
    """Every method gets raw request bytes, checks its caller (security) and decodes the request itself."""

    def __init__(self, security: ServerSecurity, metrics: RpcMetrics | None = None):
        self.security = security
        self.metrics = metrics

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        security, metrics = self.security, self.metrics

        @contextlib.contextmanager
        def observed(context, timed: bool):
            """Count the call by its status (and time it, if `timed`) however it ends."""
            t0, error = time.perf_counter(), None
            try:
                yield
            except BaseException as e:
                error = e
                raise
            finally:
                if metrics is not None:
                    metrics.observe(method, status_of(context, error), time.perf_counter() - t0 if timed else None)

        async def admit(context) -> None:
            refused = security.check(method, context.invocation_metadata() or (), context.auth_context())
            if refused is not None:
                await context.abort(*refused)

        async def decode(data: bytes, context):
            deserialize = handler.request_deserializer
            if deserialize is None:
                return data
            try:
                return deserialize(data)
            except Exception as e:     # noqa: BLE001 -- DecodeError, or any failure of the message's parser
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {e}")

        ser = handler.response_serializer
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary_unary(data, context):
                with observed(context, timed=True):
                    await admit(context)
                    return await inner(await decode(data, context), context)
            return grpc.unary_unary_rpc_method_handler(unary_unary, response_serializer=ser)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream
            if inspect.isasyncgenfunction(inner_stream):
                async def unary_stream(data, context):
                    with observed(context, timed=False):
                        await admit(context)
                        async for item in inner_stream(await decode(data, context), context):
                            yield item
            else:      # a coroutine writing with context.write
                async def unary_stream(data, context):
                    with observed(context, timed=False):
                        await admit(context)
                        return await inner_stream(await decode(data, context), context)
            return grpc.unary_stream_rpc_method_handler(unary_stream, response_serializer=ser)
        if not security.guarded:
            return handler
        # client-streaming methods (reflection alone today): the caller is checked; gRPC decodes the stream
        if handler.stream_unary is not None:
            inner_su = handler.stream_unary

            async def stream_unary(requests, context):
                await admit(context)
                return await inner_su(requests, context)
            return grpc.stream_unary_rpc_method_handler(stream_unary, request_deserializer=handler.request_deserializer,
                                                        response_serializer=ser)
        inner_ss = handler.stream_stream

        async def stream_stream(requests, context):
            await admit(context)
            result = inner_ss(requests, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            else:
                await result
        return grpc.stream_stream_rpc_method_handler(stream_stream, request_deserializer=handler.request_deserializer,
                                                     response_serializer=ser)


def _reflection_v1_descriptor() -> None:
    """Register grpc/reflection/v1/reflection.proto in the default pool -- v1alpha's file under v1's package
    (the two are wire-identical) -- so reflection can describe the v1 service it serves."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName("grpc/reflection/v1/reflection.proto")
        return
    except KeyError:
        pass
    fd = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(fd)
    fd.name = "grpc/reflection/v1/reflection.proto"
    fd.package = "grpc.reflection.v1"
    fd.ClearField("options")
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    for msg in fd.message_type:
        for f in msg.field:
            if f.type_name.startswith(old):
                f.type_name = new + f.type_name[len(old):]
    for svc in fd.service:
        for m in svc.method:
            m.input_type = new + m.input_type[len(old):]
            m.output_type = new + m.output_type[len(old):]
    pool.Add(fd)


def _add_reflection(names: list[str], server: grpc.aio.Server) -> None:
    """Reflection v1alpha (grpcio-reflection's servicer) and v1 (the same servicer behind v1's name)."""
    _reflection_v1_descriptor()
    servicer = reflection.aio.ReflectionServicer([*names, reflection.SERVICE_NAME, REFLECTION_V1])
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo, request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    for service in (reflection.SERVICE_NAME, REFLECTION_V1):
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            service, {"ServerReflectionInfo": handler})])


async def start_server(services: Sequence[tuple[Callable[[object, grpc.aio.Server], None], object, str]],
                       listen: str = "127.0.0.1:0",
                       options: Sequence[tuple[str, object]] = (),
                       security: ServerSecurity | None = None,
                       max_concurrent_rpcs: int = MAX_CONCURRENT_RPCS,
                       metrics: RpcMetrics | None = None) -> tuple[grpc.aio.Server, int]:
    """Start a server on `listen` ("host:port"; port 0 picks a free one) serving each (add_XServicer_to_server,
    servicer, full service name), counting calls in `metrics`; returns (server, bound port). OSError if the
    address cannot be bound; PermissionError if `security` does not allow listening there
    (security.listen_error)."""
    security = security or ServerSecurity()
    refused = listen_error(listen, security)
    if refused:
        raise PermissionError(refused)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0), *options], interceptors=[_Guard(security, metrics)],
                             maximum_concurrent_rpcs=max_concurrent_rpcs)
    for add, servicer, _ in services:
        add(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [name for _, _, name in services]
    _add_reflection([*names, health.SERVICE_NAME], server)
    creds = security.credentials()
    try:
        port = server.add_secure_port(listen, creds) if creds is not None else server.add_insecure_port(listen)
    except RuntimeError:             # grpc's "Failed to bind": in use, or not an address of this machine
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {listen}: the address is in use or not this machine's")
    await server.start()
    for name in (*names, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port
