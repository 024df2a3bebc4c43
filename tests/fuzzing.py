"""Fuzzing the gRPC API against running servers: hypothesis strategies for any protobuf message built from its
descriptor, the services and methods a server serves read from its descriptors, a client that calls any
method with a deadline (and with raw bytes for a payload), and the tally of outcomes.

The strategies fill every field type a proto3 message can declare -- integers with their extremes, doubles
with NaN, infinities and negatives, long and non-ASCII strings, random bytes, unknown enum values, repeated
fields, maps, nested messages, oneofs and the presence of `optional` fields -- but random names would make
every request die at NOT_FOUND and never reach the code behind the lookup. So `Targets`, read from the
server under test, biases them by field name: about half the time a `host_id` names one of its hosts, a
`tenant` or `vm` one of that host's tenants, and a message with a `count` and packed little-endian arrays
(`addresses`, `nodes`, `expected_nodes`, ...) gets arrays of `count` elements, addresses from the tenant's
real range and aligned to its page size, nodes among the host's node ids (with edge cases around each), and
a double named `*_share` is a fraction in [0, 1] half the time.
Fields whose valid values make a call expensive (`ticks`, `max_wait_ms`) are capped by the caller, who still
draws values over the API's limit.
"""

from __future__ import annotations

import json
import math
import threading
import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import strategies as st

import pagetide.v1.agent_pb2            # noqa: F401 -- registers the API's descriptors in the default pool
import pagetide.v1.controller_pb2       # noqa: F401
import pagetide.v1.simulation_pb2       # noqa: F401

# The codes a server may answer a fuzzed request with: anything else (UNKNOWN, INTERNAL, UNAVAILABLE, a
# missed deadline, ...) is a bug. FAILED_PRECONDITION is left out on purpose: the servers under test have
# driven clocks and simulated hosts, where no call of the API has a precondition to fail.
ALLOWED = frozenset({grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                     grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
# and the refusals a method documents beside those: a tenant name taken, a host whose tenants would not fit
REFUSALS = {"/pagetide.v1.SimulationService/AddTenant": {grpc.StatusCode.ALREADY_EXISTS,
                                                         grpc.StatusCode.RESOURCE_EXHAUSTED},
            "/pagetide.v1.SimulationService/ResizeTenant": {grpc.StatusCode.RESOURCE_EXHAUSTED}}
OVERSIZED = "received metadata size exceeds"   # RESOURCE_EXHAUSTED of a status message too long: never allowed

I32, U32, I64, U64 = (-(1 << 31), (1 << 31) - 1), (0, (1 << 32) - 1), (-(1 << 63), (1 << 63) - 1), (0, (1 << 64) - 1)
F = FieldDescriptor
INT_RANGES = {F.TYPE_INT32: I32, F.TYPE_SINT32: I32, F.TYPE_SFIXED32: I32, F.TYPE_UINT32: U32, F.TYPE_FIXED32: U32,
              F.TYPE_INT64: I64, F.TYPE_SINT64: I64, F.TYPE_SFIXED64: I64, F.TYPE_UINT64: U64, F.TYPE_FIXED64: U64}

# Field names the API uses for the things a server has (see the .proto files): a new field or RPC using one
# of these names is biased towards the server's real values without changing this module.
HOST_FIELDS = {"host_id"}
TENANT_FIELDS = {"tenant", "vm"}
# packed little-endian arrays of `count` elements beside a `count` field: field name -> (dtype, element kind)
PACKED = {"addresses": ("<u8", "address"), "nodes": ("<i2", "node"), "expected_nodes": ("<i2", "node"),
          "heat": ("u1", "heat"), "status": ("<i2", "node")}
SHARE_SUFFIX = "_share"       # doubles named *_share are fractions 0..1
MAX_DEPTH = 4                 # nested messages deeper than this are left unset (no API type recurses today)
ELEMENTWISE = 16              # packed arrays up to this long are drawn element by element (they shrink well)


# ---- what the server under test has ---------------------------------------------------------------------

@dataclass(frozen=True)
class TenantTarget:
    name: str
    page_size: int
    address_start: int
    address_end: int

    @property
    def pages(self) -> int:
        return (self.address_end - self.address_start) // self.page_size


@dataclass(frozen=True)
class HostTarget:
    host_id: str
    nr_nodes: int
    tenants: tuple[TenantTarget, ...]


@dataclass(frozen=True)
class Targets:
    """The hosts, tenants, address ranges and nodes of the server under test."""
    hosts: tuple[HostTarget, ...]

    @classmethod
    def from_topologies(cls, topologies: Iterable[Any]) -> "Targets":
        """From GetTopologyResponse messages (the agent's own answer, so the fuzzer needs no back door)."""
        return cls(tuple(HostTarget(t.host_id, len(t.nodes), tuple(
            TenantTarget(x.name, x.page_size_bytes, x.address_start, x.address_end) for x in t.tenants))
            for t in topologies))

    @property
    def tenants(self) -> tuple[TenantTarget, ...]:
        return tuple(x for h in self.hosts for x in h.tenants)


@dataclass
class _Scope:
    """What a message drawn so far names: later fields of it (and of its nested messages) agree with it."""
    host: HostTarget | None = None
    tenant: TenantTarget | None = None


# ---- scalar strategies -----------------------------------------------------------------------------------

def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, each drawn with its weight (st.one_of flattens nested one_ofs into equal
    branches, which would dilute a "half the time" bias)."""
    picks = [i for i, (w, _) in enumerate(choices) for _ in range(w)]
    return st.sampled_from(picks).flatmap(lambda i: choices[i][1])


def integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Anything in [lo, hi], with the extremes, the values around 0 and the powers of two near them often."""
    edges = sorted({v for v in (lo, lo + 1, hi - 1, hi, 0, 1, -1, 2, 255, 256, 4095, 4096, 65535, 65536, hi // 2,
                                (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, -(1 << 63))
                    if lo <= v <= hi})
    return st.one_of(st.sampled_from(edges), st.integers(max(lo, -64), min(hi, 64)), st.integers(lo, hi))


def over_limit(cheap: int, limit: int, top: int = U32[1]) -> st.SearchStrategy[int]:
    """A field whose valid values above `cheap` make a call slow (ticks, a long poll's wait): 0..cheap, or
    over the API's `limit` (which the server must refuse at once)."""
    return weighted((4, st.integers(0, cheap)), (1, st.sampled_from([limit + 1, top])), (1, st.integers(limit + 1, top)))


DOUBLES = st.one_of(st.sampled_from([0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 5e-324, 1e308, -1e308,
                                     2.0 ** 64, 0.5]), st.floats(allow_nan=True, allow_infinity=True))
FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 1.0, math.nan, math.inf, -math.inf, 3.4e38, -1.0]),
                   st.floats(width=32, allow_nan=True, allow_infinity=True))
STRINGS = weighted((3, st.text(max_size=24)), (2, st.text(alphabet=st.characters(codec="utf-8"), max_size=8)),
                   (2, st.sampled_from(["", " ", "\x00", "../..", "%s%n", "ü", "\u202e", "🙂" * 3])),
                   (1, st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "🙂"]), st.integers(1000, 20000))))
BYTES = weighted((4, st.binary(max_size=64)), (1, st.builds(lambda n: b"\xff" * n, st.integers(65, 5000))))


def near_miss(name: str) -> list[str]:
    """Names one character off a real one: a lookup must miss them cleanly."""
    return [name + " ", " " + name, name.upper(), name + "\x00", name[:-1], name * 2, name + "/"]


def _enum(f: FieldDescriptor) -> st.SearchStrategy[int]:
    known = [v.number for v in f.enum_type.values]
    unknown = [v for v in (-1, max(known) + 1, 99, I32[0], I32[1]) if v not in known]
    return st.one_of(st.sampled_from(known), st.sampled_from(unknown), st.integers(*I32))


# ---- messages ----------------------------------------------------------------------------------------------

def message_class(d: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(d)


def _synthetic(oneof) -> bool:
    """The hidden oneof protoc wraps a proto3 `optional` field in (it only carries the field's presence)."""
    return len(oneof.fields) == 1 and oneof.name == "_" + oneof.fields[0].name


def _is_map(f: FieldDescriptor) -> bool:
    return f.type == F.TYPE_MESSAGE and f.message_type.GetOptions().map_entry


class Generator:
    """Strategies for the messages of the API, biased towards a server's `targets`. `caps`: field name ->
    strategy replacing the generic one for fields whose cheap valid range is narrow (see `over_limit`).

    Values are drawn procedurally inside one composite strategy per message type, from strategies built once
    and cached: hypothesis labels every new strategy (reading a lambda's source), so making strategies per
    draw would cost more than the calls being fuzzed."""

    def __init__(self, targets: Targets, caps: Mapping[str, st.SearchStrategy] | None = None):
        self.targets = targets
        self.caps = dict(caps or {})
        self._cache: dict[tuple, st.SearchStrategy] = {}
        self._max_nodes = max((h.nr_nodes for h in targets.hosts), default=2)

    def messages(self, d: Descriptor) -> st.SearchStrategy[Message]:
        key = ("message", d.full_name)
        if key not in self._cache:
            self._cache[key] = st.composite(lambda draw: self._message(draw, d, _Scope(), 0))()
        return self._cache[key]

    def _cached(self, key: tuple, make: Callable[[], st.SearchStrategy]) -> st.SearchStrategy:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # the fields of a message, names first so that addresses and nodes can agree with the host and tenant
    def _message(self, draw, d: Descriptor, scope: _Scope, depth: int) -> Message:
        msg = message_class(d)()
        chosen = {o.name: draw(self._cached(("oneof", o.full_name), lambda: st.sampled_from([None, *o.fields])))
                  for o in d.oneofs if not _synthetic(o)}
        fields = sorted(d.fields, key=lambda f: (f.name not in HOST_FIELDS, f.name not in TENANT_FIELDS, f.number))
        packed = [f for f in fields if f.name in PACKED and f.type == F.TYPE_BYTES and not f.is_repeated]
        count = d.fields_by_name.get("count")
        coherent = bool(packed) and count is not None and draw(st.booleans())
        for f in fields:
            o = f.containing_oneof
            if o is not None and not _synthetic(o):
                if chosen[o.name] is not f:
                    continue
            elif f.has_presence and not draw(st.booleans()):
                continue                               # optional scalar or message field left unset
            if coherent and (f in packed or f is count):
                continue
            self._set(draw, msg, f, scope, depth)
        if coherent:
            self._packed(draw, msg, count, packed, scope)
        return msg

    def _set(self, draw, msg: Message, f: FieldDescriptor, scope: _Scope, depth: int) -> None:
        if _is_map(f):
            key_f, value_f = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
            for _ in range(draw(SMALL_COUNTS)):
                k = self._scalar(draw, key_f, scope)
                if value_f.type == F.TYPE_MESSAGE:
                    if depth < MAX_DEPTH:
                        getattr(msg, f.name)[k].CopyFrom(self._message(draw, value_f.message_type, scope, depth + 1))
                else:
                    getattr(msg, f.name)[k] = self._scalar(draw, value_f, scope)
        elif f.type == F.TYPE_MESSAGE:
            if depth >= MAX_DEPTH:
                return
            if f.is_repeated:
                for _ in range(draw(SMALL_COUNTS)):
                    getattr(msg, f.name).add().CopyFrom(self._message(draw, f.message_type, scope, depth + 1))
            else:
                getattr(msg, f.name).CopyFrom(self._message(draw, f.message_type, scope, depth + 1))
        elif f.is_repeated:
            getattr(msg, f.name).extend(self._scalar(draw, f, scope) for _ in range(draw(SMALL_COUNTS)))
        else:
            value = self._scalar(draw, f, scope)
            if f.name in HOST_FIELDS:
                scope.host = next((h for h in self.targets.hosts if h.host_id == value), None)
            elif f.name in TENANT_FIELDS:
                scope.tenant = next((t for t in self._tenants(scope) if t.name == value), None)
            setattr(msg, f.name, value)

    def _tenants(self, scope: _Scope) -> tuple[TenantTarget, ...]:
        return scope.host.tenants if scope.host is not None else self.targets.tenants

    def _scalar(self, draw, f: FieldDescriptor, scope: _Scope) -> Any:
        if f.name in self.caps:
            return draw(self.caps[f.name])
        t = f.type
        if t == F.TYPE_STRING:
            real = (tuple(h.host_id for h in self.targets.hosts) if f.name in HOST_FIELDS
                    else tuple(x.name for x in self._tenants(scope)) if f.name in TENANT_FIELDS else ())
            if real and draw(st.booleans()):
                return draw(self._cached(("names", real), lambda: st.sampled_from(real)))
            if real and draw(RARELY):
                return draw(self._cached(("near", real), lambda: st.sampled_from([m for r in real for m in near_miss(r)])))
            return draw(STRINGS)
        if t in INT_RANGES:
            return draw(self._cached(("int", t), lambda: integers(*INT_RANGES[t])))
        if t == F.TYPE_DOUBLE:
            if f.name.endswith(SHARE_SUFFIX) and draw(st.booleans()):
                return draw(SHARES)                    # a share (0..1) half the time, so valid ones pass
            return draw(DOUBLES)
        if t == F.TYPE_FLOAT:
            return draw(FLOATS)
        if t == F.TYPE_BOOL:
            return draw(st.booleans())
        if t == F.TYPE_ENUM:
            return draw(self._cached(("enum", f.enum_type.full_name), lambda: _enum(f)))
        if t == F.TYPE_BYTES:
            if f.name in PACKED and draw(st.booleans()):
                return self._array(draw, f.name, draw(st.integers(0, 6)), scope)
            return draw(BYTES)
        raise TypeError(f"{f.full_name}: no strategy for field type {t}")

    # ---- packed arrays ----

    def _packed(self, draw, msg: Message, count: FieldDescriptor, packed: list[FieldDescriptor],
                scope: _Scope) -> None:
        """`count` and arrays of exactly `count` elements -- but now and then one array of another length."""
        n = draw(PACKED_COUNTS)
        setattr(msg, count.name, n)
        bad = packed[draw(st.integers(0, len(packed) - 1))] if draw(RARELY) else None
        for f in packed:
            if f.name == "expected_nodes" and draw(st.booleans()):
                continue                               # optional by length: empty means no check
            length = n if f is not bad else draw(st.sampled_from([n + 1, max(0, n - 1), 0, 2 * n + 1]))
            data = self._array(draw, f.name, length, scope)
            if f is bad and data and draw(st.booleans()):
                data = data[:-1]                       # a length that is not a whole number of elements
            setattr(msg, f.name, data)

    def _array(self, draw, name: str, n: int, scope: _Scope) -> bytes:
        dtype, kind = PACKED[name]
        if n <= ELEMENTWISE:                           # element by element: shrinks well
            values = [self._element(draw, kind, scope) for _ in range(n)]
        else:                                          # long arrays from a drawn seed, cheap to draw
            values = self._bulk(kind, n, np.random.default_rng(draw(st.integers(0, U32[1]))), scope)
        return np.asarray(values, dtype=np.uint64 if kind == "address" else np.int64).astype(dtype).tobytes()

    def _element(self, draw, kind: str, scope: _Scope) -> int:
        if kind == "address":
            tenants = self._tenants(scope) if scope.tenant is None else (scope.tenant,)
            if not tenants or draw(RARELY):
                return draw(self._cached(("int", F.TYPE_UINT64), lambda: integers(*U64)))
            t = tenants[draw(st.integers(0, len(tenants) - 1))]
            how = draw(ADDRESS_KINDS)
            if how == "edge":
                return draw(self._cached(("edges", t), lambda: st.sampled_from([
                    t.address_start, t.address_end - t.page_size, t.address_end, t.address_start - t.page_size,
                    t.address_start + 1, t.address_end + (1 << 40), 0])))
            addr = t.address_start + draw(st.integers(0, max(0, t.pages - 1))) * t.page_size
            return addr + 512 if how == "unaligned" else addr
        if kind == "node":
            nodes = scope.host.nr_nodes if scope.host else self._max_nodes
            if draw(RARELY):
                return draw(self._cached(("bad nodes", nodes), lambda: st.sampled_from(
                    [-1, nodes, -22, 127, 128, 255, 256, -32768, 32767])))
            return draw(st.integers(0, nodes - 1))
        return draw(st.integers(0, 255))

    def _bulk(self, kind: str, n: int, rng: np.random.Generator, scope: _Scope) -> np.ndarray:
        if kind == "address":
            tenants = (scope.tenant,) if scope.tenant else self._tenants(scope)
            if not tenants:
                return rng.integers(0, U64[1], n, dtype=np.uint64, endpoint=True)
            t = tenants[rng.integers(len(tenants))]
            pages = rng.integers(0, max(1, t.pages + 2), n)        # a few just past the end
            return np.uint64(t.address_start) + pages.astype(np.uint64) * np.uint64(t.page_size)
        if kind == "node":
            nodes = scope.host.nr_nodes if scope.host else self._max_nodes
            return rng.integers(-1, nodes + 1, n)
        return rng.integers(0, 256, n)


SHARES = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0))
SMALL_COUNTS = st.integers(0, 4)                  # elements of a repeated field or map
RARELY = st.sampled_from([True, False, False, False, False])
ADDRESS_KINDS = st.sampled_from(["inside"] * 6 + ["edge", "edge", "unaligned"])
PACKED_COUNTS = weighted((4, st.integers(1, 4)), (2, st.integers(0, ELEMENTWISE)),
                         (1, st.sampled_from([0, 2, 3, 511, 512, 1024, 1025])), (1, st.integers(0, 1100)))


# ---- services, methods and calls ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Method:
    service: str                  # full name, e.g. pagetide.v1.AgentService
    name: str
    path: str                     # /pagetide.v1.AgentService/ListHosts
    request: Descriptor
    response: Descriptor
    client_streaming: bool
    server_streaming: bool


def methods(service: ServiceDescriptor) -> list[Method]:
    return [Method(service.full_name, m.name, f"/{service.full_name}/{m.name}", m.input_type, m.output_type,
                   m.client_streaming, m.server_streaming) for m in service.methods]


def served_services(channel: grpc.Channel, prefix: str = "pagetide.", timeout: float = 5.0) -> list[ServiceDescriptor]:
    """The services a server lists through server reflection whose names start with `prefix`, as
    descriptors of this process's API: an RPC or service another engineer adds is fuzzed with no change
    here. (Health and reflection themselves are left out: Watch and the reflection stream never end.)"""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                        timeout=timeout)
    names = [s.name for a in answers for s in a.list_services_response.service]
    pool = descriptor_pool.Default()
    return [pool.FindServiceByName(n) for n in sorted(names) if n.startswith(prefix)]


@dataclass(frozen=True)
class Outcome:
    method: Method
    raw: bool                     # the payload was raw bytes, not a message
    code: grpc.StatusCode
    details: str
    request: Any

    @property
    def allowed(self) -> bool:
        if self.raw and self.code != grpc.StatusCode.INVALID_ARGUMENT and not _parses(self.method, self.request):
            return False              # bytes that are no message of the request type are a malformed request
        if self.code == grpc.StatusCode.DEADLINE_EXCEEDED and self.method.server_streaming and self.details == STREAM_CUT:
            return True               # the client's own deadline ended a stream it was still reading
        if self.code in REFUSALS.get(self.method.path, ()) and OVERSIZED not in self.details:
            return True
        return self.code in ALLOWED


STREAM_CUT = "stream read until the client's deadline"
MAX_STREAM_MESSAGES = 64          # a server stream is read this far, then cancelled (an endless Watch is fine)


def _parses(m: Method, payload: bytes) -> bool:
    try:
        message_class(m.request).FromString(payload)
        return True
    except DecodeError:
        return False


def _serialize(msg: Message) -> bytes:
    return msg.SerializeToString()


class Caller:
    """Calls any method of `methods` on `channel` with a deadline, as a message or as raw bytes."""

    def __init__(self, channel: grpc.Channel, deadline: float, stream_deadline: float | None = None):
        """stream_deadline: how long a server stream is read (a watch never ends by itself)."""
        self.channel, self.deadline = channel, deadline
        self.stream_deadline = stream_deadline if stream_deadline is not None else deadline
        self._callables: dict[tuple[str, bool], Any] = {}

    def _callable(self, m: Method, raw: bool):
        if (m.path, raw) not in self._callables:
            ch = self.channel
            kind = (ch.stream_stream if m.server_streaming else ch.stream_unary) if m.client_streaming \
                else (ch.unary_stream if m.server_streaming else ch.unary_unary)
            # responses stay bytes: only the status matters, and a raw payload has no message to decode into
            ser = None if raw else _serialize
            self._callables[m.path, raw] = kind(m.path, request_serializer=ser, response_deserializer=None)
        return self._callables[m.path, raw]

    def start(self, m: Method, request: Any, raw: bool = False) -> Callable[[], Outcome]:
        """Send one request now; the returned function waits for its outcome. Several may be in flight."""
        call_fn = self._callable(m, raw)
        payload = iter([request] * 2) if m.client_streaming else request
        if m.server_streaming:
            holder: dict[str, Any] = {}

            def read() -> None:
                stream = call_fn(payload, timeout=self.stream_deadline)
                holder["stream"] = stream
                try:
                    for i, _ in enumerate(stream):
                        if i + 1 >= MAX_STREAM_MESSAGES:
                            stream.cancel()
                            holder["outcome"] = (grpc.StatusCode.OK, "")
                            return
                    holder["outcome"] = (grpc.StatusCode.OK, "")
                except grpc.RpcError as e:
                    cut = e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "stream" in holder
                    holder["outcome"] = (e.code(), STREAM_CUT if cut else e.details() or "")
            thread = threading.Thread(target=read, daemon=True)
            thread.start()

            def wait_stream() -> Outcome:
                thread.join(self.stream_deadline + 5)
                code, details = holder.get("outcome", (grpc.StatusCode.DEADLINE_EXCEEDED, "stream reader hung"))
                return Outcome(m, raw, code, details, request)
            return wait_stream
        future = call_fn.future(payload, timeout=self.deadline)

        def wait() -> Outcome:
            try:
                future.result()
                return Outcome(m, raw, grpc.StatusCode.OK, "", request)
            except grpc.RpcError as e:
                return Outcome(m, raw, e.code(), e.details() or "", request)
        return wait


def raw_payloads(gen: Generator, m: Method) -> st.SearchStrategy[bytes]:
    """Bytes sent as the request as they are: random, or a real request serialized and then cut, grown or
    corrupted (so the parser gets deep into a message before it fails)."""
    def mangle(data: bytes, how: int, at: int, byte: int) -> bytes:
        at = at % (len(data) + 1)
        if how == 0:
            return data[:at]
        if how == 1:
            return data[:at] + bytes([byte]) + data[at:]
        if how == 2:
            return data[:at] + bytes([byte]) + data[at + 1:]
        return data + bytes([byte, 0xff, 0xff, 0xff, 0xff, 0x0f])
    real = gen.messages(m.request).map(lambda msg: msg.SerializeToString())
    return st.one_of(st.binary(max_size=96),
                     st.sampled_from([b"\xff", b"\x0a\x05ab", b"\x0a\x02\xc3\x28", b"\x08" + b"\xff" * 10, b"\x07",
                                      b"\x0b\x0c", b"\x12\xff\xff\xff\xff\x0f"]),
                     st.builds(mangle, real, st.integers(0, 3), st.integers(0, 1 << 16), st.integers(0, 255)))


# ---- the tally ----------------------------------------------------------------------------------------------

@dataclass
class Tally:
    """Outcome counts per service, per method and per status code, messages and raw payloads apart."""
    by_service: dict[str, Counter] = field(default_factory=dict)
    by_method: dict[str, Counter] = field(default_factory=dict)
    raw_by_service: dict[str, Counter] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, o: Outcome) -> None:
        # a stream the client's own deadline ended is counted apart from a call that missed its deadline
        name = "STREAM_CUT_BY_CLIENT_DEADLINE" if o.details == STREAM_CUT else o.code.name
        self.by_service.setdefault(o.method.service, Counter())[name] += 1
        self.by_method.setdefault(o.method.path, Counter())[name] += 1
        if o.raw:
            self.raw_by_service.setdefault(o.method.service, Counter())[name] += 1

    def requests(self, service: str) -> int:
        return sum(self.by_service.get(service, Counter()).values())

    def summary(self) -> str:
        parts = []
        for s, c in sorted(self.by_service.items()):
            codes = " ".join(f"{k}={v}" for k, v in sorted(c.items()))
            parts.append(f"{s.rsplit('.', 1)[-1]}: {sum(c.values())} requests ({codes})")
        return "fuzz: " + "; ".join(parts)

    def as_json(self) -> dict:
        return {"services": {s: {"requests": sum(c.values()), "codes": dict(sorted(c.items())),
                                 "raw_payload_codes": dict(sorted(self.raw_by_service.get(s, Counter()).items()))}
                             for s, c in sorted(self.by_service.items())},
                "methods": {m: dict(sorted(c.items())) for m, c in sorted(self.by_method.items())},
                "seconds": {k: round(v, 2) for k, v in sorted(self.seconds.items())}}

    def write(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.as_json(), f, indent=2)
            f.write("\n")


# ---- a server's event loop beside the test ------------------------------------------------------------------

class LoopThread:
    """An asyncio loop in a thread of its own, so a grpc.aio server (and a controller) run while the test's
    hypothesis loop calls them with a blocking client."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzzed-server", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
