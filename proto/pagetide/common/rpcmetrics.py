"""Server-side RPC metrics both servers export (the agent's and ControllerService): calls handled per method
and status code, and the wall time of unary calls per method, recorded by serve.py's interceptor.

Labels stay bounded: only methods a server registered are counted (an unknown method never gets this far), and
codes are gRPC's 17. GetHeatReport is a long poll, so its time includes the wait for the host's next period:
its buckets reach past the longest wait (limits.MAX_WAIT_SECONDS).
"""

from __future__ import annotations

import asyncio

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

# from a cached heat report on loopback (~0.3 ms) to a long poll that waited out (up to 10 s)
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def split_method(full: str) -> tuple[str, str]:
    """'/pagetide.v1.AgentService/MovePages' -> ('pagetide.v1.AgentService', 'MovePages')."""
    service, _, method = full.lstrip("/").rpartition("/")
    return service, method


class RpcMetrics:
    """pagetide_rpc_server_* on `registry`."""

    def __init__(self, registry: CollectorRegistry):
        self.handled = Counter("pagetide_rpc_server_handled_total", "RPCs completed by the server, by method "
                               "and gRPC status code", ["service", "method", "code"], registry=registry)
        self.seconds = Histogram("pagetide_rpc_server_handling_seconds", "Wall time of unary RPCs from the "
                                 "request's arrival to the answer (GetHeatReport: includes its long-poll wait)",
                                 ["service", "method"], buckets=RPC_BUCKETS, registry=registry)

    def observe(self, full_method: str, code: grpc.StatusCode, seconds: float | None) -> None:
        service, method = split_method(full_method)
        self.handled.labels(service, method, code.name).inc()
        if seconds is not None:
            self.seconds.labels(service, method).observe(seconds)


def status_of(context, error: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with: what the method set or aborted with, CANCELLED for a call the client gave
    up on, UNKNOWN for an exception the method did not turn into a status."""
    code = context.code() if hasattr(context, "code") else None
    if isinstance(code, int):           # grpc.aio keeps the integer value once set through abort()
        code = next((c for c in grpc.StatusCode if c.value[0] == code), None)
    if error is None:
        return code or grpc.StatusCode.OK
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    if code not in (None, grpc.StatusCode.OK):
        return code
    return grpc.StatusCode.UNKNOWN
