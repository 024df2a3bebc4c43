"""The API fuzzed against running servers: every request type of every pagetide service a server lists (read
from the descriptors, so RPCs added later are fuzzed too), property-based with hypothesis, plus raw bytes as
payloads. Each call has a deadline; the only answers allowed are OK, INVALID_ARGUMENT, NOT_FOUND,
UNAUTHENTICATED and PERMISSION_DENIED (raw bytes that are no message: INVALID_ARGUMENT). Afterwards the server
still answers health checks, every simulated host's model passes its invariants, and the controller's state
holds only valid policies of real VMs and keeps reconciling.

Reproducible: hypothesis is derandomized (a fixed seed per test) with no example database. At least
`REQUESTS` requests per service; PAGETIDE_FUZZ_REPORT=path writes the outcome counts as JSON. Long polls and
AdvanceClock are capped to cheap values (`CAPS`), with values over the API's limits still drawn. A server
stream (WatchEvents) is read until MAX_STREAM_MESSAGES or a short deadline of its own; DEADLINE_EXCEEDED from
the client's own deadline on a stream counts as allowed (STREAM_CUT_BY_CLIENT_DEADLINE in the tally).

    PAGETIDE_FUZZ_REPORT=fuzz.json .venv/bin/python -m pytest tests/test_fuzz.py     # e2e part needs Ray
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from pagetide.agent.scenario import parse_scenario
from pagetide.agent.server import start_agent
from pagetide.agent.simhost import SimHost
from pagetide.agent.workloads import WORKLOADS
from pagetide.common.limits import MAX_TICKS, MAX_WAIT_SECONDS
from pagetide.v1 import agent_pb2, agent_pb2_grpc, simulation_pb2, simulation_pb2_grpc

from fuzzing import (
    Caller, Generator, LoopThread, Method, Outcome, Tally, Targets, methods, over_limit, raw_payloads,
    served_services,
)
from helpers import small_scenario

REQUESTS = 1100            # requests per service at least (the issue asks for 1,000 in CI)
DEADLINE = 5.0             # seconds per call; a call that misses it fails the test
CAPS = {
    "ticks": over_limit(8, MAX_TICKS),                              # a few ticks per AdvanceClock
    "max_wait_ms": over_limit(40, int(MAX_WAIT_SECONDS * 1000)),    # long polls of at most 40 ms
    # AddTenant's workload and size: real types and small page multiples half the time, so that tenants arrive
    "type": st.one_of(st.sampled_from(sorted(WORKLOADS)), st.text(max_size=12)),
    "footprint_bytes": st.one_of(st.integers(1, 64).map(lambda n: n * 4096), st.integers(0, (1 << 64) - 1)),
    "name": st.one_of(st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True), st.text(max_size=24)),
}
RAW_SHARE = st.sampled_from([False] * 5 + [True])
TALLY = Tally()            # the session's outcomes, written to PAGETIDE_FUZZ_REPORT after each fuzz test

FUZZ_SETTINGS = dict(derandomize=True, database=None, deadline=None, print_blob=False,
                     suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate, Phase.shrink))


def fuzz_hosts() -> list[SimHost]:
    """Three small hosts whose calls stay cheap but reach different code: 4 KiB and 2 MiB pages, a task with
    pinned pages, three nodes with CXL, TPP and NUMA-balancing tiering, stock zonelists, swap under pressure."""
    a = small_scenario(name="fz-a", dram="16MiB", slow="48MiB", tenants=[
        {"name": "vm0", "footprint": "24MiB", "workload": {"type": "zipf", "samples": 256}},
        {"name": "vm-thp", "footprint": "16MiB", "page_size": "2MiB",
         "workload": {"type": "hotset", "samples": 128, "move_every": "1s"}},
        {"name": "task0", "kind": "task", "footprint": "4MiB", "pinned": "10%", "prefault": False,
         "workload": {"type": "scan+hot", "samples": 128}}])
    b = parse_scenario({
        "name": "fz-b", "seed": 5, "tick": "100ms", "epoch": "300ms",
        "host": {"nodes": [{"id": 0, "type": "dram", "capacity": "16MiB", "peer_node": 1},
                           {"id": 1, "type": "pmem", "capacity": "16MiB"},
                           {"id": 2, "type": "cxl", "capacity": "16MiB"}],
                 "kernel": {"zonelist": "unified", "swap": "0", "tiering": {"mode": "tpp"}}},
        "tenants": [{"name": "vm0", "footprint": "20MiB", "workload": {"type": "drift", "samples": 256}},
                    {"name": "vm1", "footprint": "12MiB", "workload": {"type": "write-heavy", "samples": 128}}]})
    c = small_scenario(name="fz-c", dram="8MiB", slow="8MiB",
                       kernel={"swap": "16MiB", "tiering": {"mode": "nbt", "scan_period": "1s"}},
                       tenants=[{"name": "vm-big", "footprint": "12MiB",
                                 "workload": {"type": "phases", "samples": 256, "period": "1s"}},
                                {"name": "vm-cold", "footprint": "10MiB", "workload": {"type": "idle-vm"}}])
    return [SimHost(s) for s in (a, b, c)]


# ---- the generator itself ------------------------------------------------------------------------------------

def test_the_generator_fills_every_field_type_a_proto3_message_can_declare():
    """A message declared here with every scalar type, an enum, repeated fields, a map of messages, a real
    oneof and proto3 optional presence: drawn messages serialize and parse back, and every field is seen set."""
    f = descriptor_pb2.FileDescriptorProto(name="fuzz_selftest.proto", package="fuzzselftest", syntax="proto3")
    e = f.enum_type.add(name="Colour")
    for i, n in enumerate(["COLOUR_UNSPECIFIED", "COLOUR_RED"]):
        e.value.add(name=n, number=i)
    inner = f.message_type.add(name="Inner")
    inner.field.add(name="host_id", number=1, type=9, label=1)
    m = f.message_type.add(name="Everything")
    T = descriptor_pb2.FieldDescriptorProto
    scalars = ["double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "string", "bytes",
               "uint32", "sfixed32", "sfixed64", "sint32", "sint64"]
    for i, name in enumerate(scalars, start=1):
        m.field.add(name=f"f_{name}", number=i, type=getattr(T, f"TYPE_{name.upper()}"), label=1)
    m.field.add(name="colour", number=20, type=T.TYPE_ENUM, type_name=".fuzzselftest.Colour", label=1)
    m.field.add(name="many", number=21, type=T.TYPE_SINT32, label=3)
    m.field.add(name="inners", number=22, type=T.TYPE_MESSAGE, type_name=".fuzzselftest.Inner", label=3)
    entry = m.nested_type.add(name="ByNameEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=T.TYPE_STRING, label=1)
    entry.field.add(name="value", number=2, type=T.TYPE_MESSAGE, type_name=".fuzzselftest.Inner", label=1)
    m.field.add(name="by_name", number=23, type=T.TYPE_MESSAGE, type_name=".fuzzselftest.Everything.ByNameEntry",
                label=3)
    m.oneof_decl.add(name="choice")
    m.field.add(name="a", number=24, type=T.TYPE_STRING, label=1, oneof_index=0)
    m.field.add(name="b", number=25, type=T.TYPE_MESSAGE, type_name=".fuzzselftest.Inner", label=1, oneof_index=0)
    m.oneof_decl.add(name="_maybe")
    m.field.add(name="maybe", number=26, type=T.TYPE_UINT32, label=1, oneof_index=1, proto3_optional=True)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    d = pool.FindMessageTypeByName("fuzzselftest.Everything")
    cls = message_factory.GetMessageClass(d)
    seen: set[str] = set()
    presence = set()

    @settings(max_examples=300, **FUZZ_SETTINGS)
    @given(Generator(Targets(())).messages(d))
    def check(msg):
        assert cls.FromString(msg.SerializeToString()) == msg
        seen.update(fd.name for fd, _ in msg.ListFields())
        presence.add(msg.HasField("maybe"))
        if msg.colour not in (0, 1):
            seen.add("unknown enum")
    check()
    assert seen >= {fd.name for fd in d.fields} | {"unknown enum"}
    assert presence == {True, False}


def test_names_addresses_and_packed_arrays_follow_the_server_s_hosts_and_tenants():
    targets = Targets.from_topologies([_topology(h) for h in fuzz_hosts()[:1]])
    gen = Generator(targets)
    real_host = real_tenant = coherent = aligned = 0

    @settings(max_examples=400, **FUZZ_SETTINGS)
    @given(gen.messages(agent_pb2.MovePagesRequest.DESCRIPTOR))
    def check(req):
        nonlocal real_host, real_tenant, coherent, aligned
        real_host += req.host_id == "fz-a"
        for c in req.calls:
            tenant = next((t for t in targets.tenants if t.name == c.tenant), None)
            real_tenant += tenant is not None
            if c.count and len(c.addresses) == 8 * c.count and len(c.nodes) == 2 * c.count:
                coherent += 1
                if tenant is not None:
                    a = np.frombuffer(c.addresses, "<u8")
                    aligned += bool(((a - np.uint64(tenant.address_start)) % np.uint64(tenant.page_size) == 0).all()
                                    and (a >= tenant.address_start).all() and (a < tenant.address_end).all())
    check()
    assert 120 < real_host < 280 and real_tenant > 150 and coherent > 100 and aligned > 20


def _topology(sh: SimHost) -> agent_pb2.GetTopologyResponse:
    from pagetide.agent.server import topology_pb
    return topology_pb(sh.topology())


# ---- running the fuzz -------------------------------------------------------------------------------------

def fuzz(caller: Caller, gen: Generator, service_methods: list[Method], tally: Tally, examples: int,
         between: Callable[[int], None] | None = None) -> list[Outcome]:
    """`examples` hypothesis examples, each 1..3 requests (messages of a drawn method, or raw bytes) sent at
    once; fails at the first answer outside ALLOWED. `between(i)` runs after example i (e.g. to let time pass)."""
    by_method = {m.path: (m, gen.messages(m.request), raw_payloads(gen, m)) for m in service_methods}
    services = sorted({m.service for m in service_methods})
    paths = {s: sorted(p for p, (m, _, _) in by_method.items() if m.service == s) for s in services}

    @st.composite
    def one(draw):
        """A service, one of its methods, then a message of its request type or (1 in 6) raw bytes: every
        service gets its share of requests however many methods it has."""
        path = draw(st.sampled_from(paths[draw(st.sampled_from(services))]))
        raw = draw(RAW_SHARE)
        return path, raw, draw(by_method[path][2 if raw else 1])
    bad: list[Outcome] = []
    count = [0]

    @settings(max_examples=examples, **FUZZ_SETTINGS)
    @given(st.lists(one(), min_size=1, max_size=3))
    def run(batch):
        waits = [caller.start(by_method[path][0], request, raw) for path, raw, request in batch]
        outcomes = [w() for w in waits]
        for o in outcomes:
            tally.add(o)
            note(f"{o.method.path} raw={o.raw} -> {o.code.name}: {o.details[:300]}")
        wrong = [o for o in outcomes if not o.allowed]
        bad.extend(wrong)
        if wrong:
            raise AssertionError("; ".join(f"{o.method.path} -> {o.code.name} {o.details[:300]!r}" for o in wrong))
        count[0] += 1
        if between is not None:
            between(count[0])
    run()
    return bad


def _report(capsys) -> None:
    path = os.environ.get("PAGETIDE_FUZZ_REPORT")
    if path:
        TALLY.write(path)
    with capsys.disabled():
        print("\n" + TALLY.summary())


def check_every_host(loop: LoopThread, agent) -> None:
    """Every simulated host's invariants, each under its slot's lock (no call is running on it meanwhile)."""
    async def check():
        for slot in agent.slots.values():
            async with slot.lock:
                slot.backend.host.check_invariants()
    loop.run(check())


def assert_healthy(channel: grpc.Channel, services: list[str]) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for name in ["", *services]:
        r = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=DEADLINE)
        assert r.status == health_pb2.HealthCheckResponse.SERVING, name


def examples_for(services: list, requests: int = REQUESTS) -> int:
    """Examples so that each service gets `requests` requests at least (2 requests per example on average)."""
    return int(requests * len(services) / 2 * 1.15)


def test_fuzzed_agent_and_simulation_requests_get_only_allowed_codes_and_break_no_host(capsys):
    loop = LoopThread()
    hosts = fuzz_hosts()
    agent = loop.run(start_agent(hosts, "127.0.0.1:0", clock="driven"))
    t0 = time.perf_counter()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{agent.port}") as ch:
            services = served_services(ch)
            names = [s.full_name for s in services]
            assert {"pagetide.v1.AgentService", "pagetide.v1.SimulationService"} <= set(names)
            stub = agent_pb2_grpc.AgentServiceStub(ch)
            targets = Targets.from_topologies(
                stub.GetTopology(agent_pb2.GetTopologyRequest(host_id=h.host_id), timeout=DEADLINE) for h in hosts)
            gen = Generator(targets, CAPS)
            every = [m for s in services for m in methods(s)]

            def between(i):
                if i % 200 == 0:
                    check_every_host(loop, agent)
            bad = fuzz(Caller(ch, DEADLINE), gen, every, TALLY, examples_for(services), between)
            assert not bad
            assert agent.server is not None and loop.thread.is_alive()
            assert_healthy(ch, names)
            assert list(stub.ListHosts(agent_pb2.ListHostsRequest(), timeout=DEADLINE).host_ids) == \
                [h.host_id for h in hosts]
            check_every_host(loop, agent)
            # the fuzz reached past the lookups: every method answered OK at least once
            for m in every:
                assert TALLY.by_method[m.path]["OK"] > 0, (m.path, TALLY.by_method[m.path])
            for s in names:
                assert TALLY.requests(s) >= REQUESTS, (s, TALLY.by_service[s])
            # and time still passes on every host
            sim = simulation_pb2_grpc.SimulationServiceStub(ch)
            for h in hosts:
                before = h.ticks_run
                sim.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id=h.host_id, ticks=5), timeout=DEADLINE)
                assert h.ticks_run == before + 5
            check_every_host(loop, agent)
    finally:
        TALLY.seconds["agent"] = time.perf_counter() - t0
        loop.run(agent.stop(None))
        loop.close()
    _report(capsys)


def test_a_long_unknown_name_is_not_found_not_an_oversized_error_message():
    """Found by the fuzz: the agent echoed an unknown host id, tenant or batch id whole into the status
    message, and a 20,000-character name made it larger than the client's 8 KiB metadata limit, so the
    client saw RESOURCE_EXHAUSTED instead of NOT_FOUND."""
    loop = LoopThread()
    sh = fuzz_hosts()[0]
    agent = loop.run(start_agent([sh], "127.0.0.1:0", clock="driven"))
    long_name = "é" * 20000
    try:
        with grpc.insecure_channel(f"127.0.0.1:{agent.port}") as ch:
            stub = agent_pb2_grpc.AgentServiceStub(ch)
            calls = [
                (stub.GetTopology, agent_pb2.GetTopologyRequest(host_id=long_name)),
                (stub.MovePages, agent_pb2.MovePagesRequest(host_id=sh.host_id, calls=[
                    agent_pb2.MoveCall(tenant=long_name)])),
            ]
            for fn, request in calls:
                with pytest.raises(grpc.RpcError) as e:
                    fn(request, timeout=DEADLINE)
                assert e.value.code() == grpc.StatusCode.NOT_FOUND, e.value.details()
                assert len(e.value.details()) < 300
    finally:
        loop.run(agent.stop(None))
        loop.close()


@pytest.mark.e2e
def test_fuzzed_controller_requests_get_only_allowed_codes_and_leave_its_state_sane(ray_session, capsys):
    """ControllerService of a real Controller (Ray proxies, per-host loops) over an in-process agent whose
    clocks the test advances now and then, so rounds run with whatever policies the fuzz left in force."""
    from pagetide.controller.controller import Controller
    from pagetide.controller.service import start_controller_server

    loop = LoopThread()
    hosts = fuzz_hosts()
    agent = loop.run(start_agent(hosts, "127.0.0.1:0", clock="driven"))
    ctl = Controller({h.host_id: f"127.0.0.1:{agent.port}" for h in hosts}, wait=1.0)
    t0 = time.perf_counter()
    server = None
    try:
        loop.run(ctl.start())
        server, port = loop.run(start_controller_server(ctl))
        sim_ch = grpc.insecure_channel(f"127.0.0.1:{agent.port}")
        sim = simulation_pb2_grpc.SimulationServiceStub(sim_ch)

        def advance() -> None:
            for h in hosts:
                sim.AdvanceClock(simulation_pb2.AdvanceClockRequest(
                    host_id=h.host_id, ticks=h.scenario.ticks_per_epoch), timeout=DEADLINE)

        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            services = served_services(ch)
            names = [s.full_name for s in services]
            assert names == ["pagetide.v1.ControllerService"]
            agent_stub = agent_pb2_grpc.AgentServiceStub(sim_ch)
            targets = Targets.from_topologies(agent_stub.GetTopology(
                agent_pb2.GetTopologyRequest(host_id=h.host_id), timeout=DEADLINE) for h in hosts)
            every = [m for s in services for m in methods(s)]

            def between(i):
                if i % 150 == 0:
                    advance()
            # a watch never ends by itself: it is read for 50 ms, and the deadline that cuts it is allowed
            bad = fuzz(Caller(ch, DEADLINE, stream_deadline=0.05), Generator(targets, CAPS), every, TALLY,
                       examples_for(services), between)
            assert not bad
            assert TALLY.requests("pagetide.v1.ControllerService") >= REQUESTS
            assert_healthy(ch, names)
            # the loops still reconcile every host with the policies the fuzz left
            rounds = ctl.rounds()
            advance()
            periods = {h.host_id: h.period for h in hosts}
            assert loop.run(ctl.wait_reconciled(periods, 30), timeout=40)
            assert ctl.rounds() > rounds
            assert all(s.up for s in ctl.hosts.values()), {h: s.last_error for h, s in ctl.hosts.items()}
            # policies only for real VMs of real hosts
            for h, ps in ctl.policies.items():
                assert h in targets_by_id(targets) and set(ps) <= ctl.vms(h), (h, sorted(ps))
        sim_ch.close()
        check_every_host(loop, agent)
    finally:
        TALLY.seconds["controller"] = time.perf_counter() - t0
        if server is not None:
            loop.run(server.stop(None))
        loop.run(ctl.stop())
        ctl.shutdown()
        loop.run(agent.stop(None))
        loop.close()
    _report(capsys)


def targets_by_id(targets: Targets) -> dict:
    return {h.host_id: h for h in targets.hosts}


def test_a_long_unknown_host_vm_or_label_name_gets_its_code_from_the_controller_too():
    """Found by the fuzz, as on the agent: ControllerService echoed an unknown host id, VM or bad label name
    whole, and a long one came back as RESOURCE_EXHAUSTED."""
    from pagetide.controller.controller import Controller
    from pagetide.controller.service import start_controller_server
    from pagetide.controller.store import PolicyStore
    from pagetide.v1 import controller_pb2, controller_pb2_grpc, types_pb2

    long_name = "é" * 20000
    loop = LoopThread()

    async def serve():
        ctl = Controller({"h0": "127.0.0.1:1"}, store=PolicyStore())
        ctl.hosts["h0"].topology = agent_pb2.GetTopologyResponse(host_id="h0", tenants=[
            types_pb2.Tenant(name="vm0", kind=types_pb2.TENANT_KIND_VM, page_size_bytes=4096, footprint_bytes=1 << 30)])
        ctl.hosts["h0"].status = "up"
        return ctl, await start_controller_server(ctl)
    ctl, (server, port) = loop.run(serve())
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = controller_pb2_grpc.ControllerServiceStub(ch)
            calls = [
                (stub.GetVmPolicy, controller_pb2.GetVmPolicyRequest(host_id=long_name, vm="vm0"),
                 grpc.StatusCode.NOT_FOUND),
                (stub.GetVmPolicy, controller_pb2.GetVmPolicyRequest(host_id="h0", vm=long_name),
                 grpc.StatusCode.NOT_FOUND),
                (stub.ListVms, controller_pb2.ListVmsRequest(selector=controller_pb2.VmSelector(
                    labels={long_name: "x"})), grpc.StatusCode.INVALID_ARGUMENT),
            ]
            for fn, request, code in calls:
                with pytest.raises(grpc.RpcError) as e:
                    fn(request, timeout=DEADLINE)
                assert e.value.code() == code, e.value.details()
                assert len(e.value.details()) < 300
    finally:
        loop.run(server.stop(None))
        ctl.store.close()
        loop.close()
