"""The API contract (proto/pagetide/v1): generated modules, wire-size bounds the docs promise, move_pages
statuses, enum conventions, and the lint + staleness check CI runs."""

import errno
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from pagetide.common import limits
from pagetide.v1 import agent_pb2, agent_pb2_grpc, controller_pb2, controller_pb2_grpc, simulation_pb2, types_pb2

ROOT = Path(__file__).resolve().parent.parent
BUF = shutil.which("buf", path=sysconfig.get_path("scripts")) or shutil.which("buf")
needs_buf = pytest.mark.skipif(BUF is None, reason="buf is not installed (pip install buf-bin, part of .[dev])")
TOP_OF_USER_SPACE = 1 << 47          # x86-64 user addresses are below 2^47: at most 7 bytes as a varint


def test_generated_modules_import_and_carry_every_service():
    assert [m.name for m in agent_pb2.DESCRIPTOR.services_by_name["AgentService"].methods] == [
        "ListHosts", "GetTopology", "GetHeatReport", "MovePages"]
    assert [m.name for m in simulation_pb2.DESCRIPTOR.services_by_name["SimulationService"].methods] == [
        "AdvanceClock", "GetStats", "AddTenant", "RemoveTenant", "ResizeTenant"]   # simulation only: out of the
    # service a real host serves
    assert [m.name for m in controller_pb2.DESCRIPTOR.services_by_name["ControllerService"].methods] == [
        "SetVmPolicy", "GetVmPolicy", "ListVmPolicies", "GetStatus", "DeleteVmPolicy", "ListManagedHosts", "ListVms",
        "GetVmHeat", "PauseMigration", "ResumeMigration", "WatchEvents", "GetFleetAdvice"]
    assert agent_pb2_grpc.AgentServiceStub and controller_pb2_grpc.ControllerServiceStub
    assert agent_pb2.DESCRIPTOR.package == "pagetide.v1"


def test_a_full_move_batch_of_1024_small_pages_serialises_below_grpc_limits():
    addrs = np.arange(1024, dtype="<u8") * 4096 + (1 << 46)
    call = agent_pb2.MoveCall(tenant="vm0", count=1024, addresses=addrs.tobytes(),
                              nodes=np.ones(1024, "<i2").tobytes(), sw_young=True)
    assert call.ByteSize() <= 1024 * (8 + 2) + 32      # packed arrays: 8 bytes an address, 2 a node
    req = agent_pb2.MovePagesRequest(host_id="host-00", batch_id="r1-0", calls=[call] * limits.MAX_CALLS)
    assert req.ByteSize() < 1 << 20                    # the 64-call maximum stays under protobuf's advised 1 MB
    assert limits.MAX_CALLS * 1024 * 4096 == limits.MAX_CALLS * limits.MAX_MOVE_BYTES


def test_move_statuses_carry_negative_errnos_like_move_pages():
    statuses = np.array([1, -errno.ENOENT, -errno.EFAULT, -errno.EACCES, -errno.EBUSY, -errno.ENOMEM, -errno.EINVAL],
                        dtype="<i2")
    assert statuses[1:].tolist() == [-2, -14, -13, -16, -12, -22]
    back = agent_pb2.MoveCallResult.FromString(agent_pb2.MoveCallResult(status=statuses.tobytes()).SerializeToString())
    assert np.frombuffer(back.status, "<i2").tolist() == statuses.tolist()


def test_the_documented_limits_are_the_ones_enforced():
    agent = (ROOT / "proto" / "pagetide" / "v1" / "agent.proto").read_text()
    assert f"at most {limits.MAX_CANDIDATES}" in agent and f"at most {limits.MAX_CALLS}" in agent
    assert "at most 60000" in agent and limits.MAX_WAIT_SECONDS == 60
    sim = (ROOT / "proto" / "pagetide" / "v1" / "simulation.proto").read_text()
    assert f"at most {limits.MAX_TICKS}" in sim


def test_every_enum_starts_with_unspecified_zero():
    enums = [e for mod in (types_pb2, agent_pb2, simulation_pb2, controller_pb2) for e in mod.DESCRIPTOR.enum_types_by_name.values()]
    assert {e.name for e in enums} >= {"NodeType", "TenantKind", "ZonelistMode"}
    for e in enums:
        assert e.values[0].number == 0 and e.values[0].name.endswith("_UNSPECIFIED"), e.name
    assert types_pb2.NODE_TYPE_UNSPECIFIED == 0 and types_pb2.TENANT_KIND_UNSPECIFIED == 0
    assert controller_pb2.VmPolicy().weight == 0.0   # unset: the server applies the default of 1


def test_a_heat_report_stays_within_the_size_its_docs_promise():
    tenants, nodes = 8, 4
    k = 30000 // tenants                             # GetHeatReportRequest.max_candidates' advice

    def full(n):
        return agent_pb2.PageList(count=n, addresses=np.full(n, TOP_OF_USER_SPACE - 4096, "<u8").tobytes(),
                                  heat=bytes([240]) * n, nodes=np.full(n, 3, "<i2").tobytes())

    report = agent_pb2.GetHeatReportResponse(
        host_id="host-0001", period=1 << 32, nr_scans=15, time_ns=1 << 62, node_free_bytes=[1 << 42] * nodes,
        vmstat=types_pb2.Vmstat(**{f.name: 1 << 40 for f in types_pb2.Vmstat.DESCRIPTOR.fields}),
        tenants=[agent_pb2.TenantHeat(
            tenant=f"vm-{i:03d}", page_size_bytes=4096, accessed_page_scans=1 << 40,
            histograms=[agent_pb2.HeatHistogram(node=n, pages=[1 << 40] * 16) for n in range(nodes)],
            hot_slow=full(k), cold_fast=full(k), hot_fast=full(k)) for i in range(tenants)])
    assert report.ByteSize() <= 33 * k * tenants + 200 * tenants * nodes + 200
    assert report.ByteSize() < 1_000_000


@needs_buf
def test_api_is_lint_clean_and_generated_code_is_fresh():
    r = subprocess.run(["bash", str(ROOT / "proto" / "check.sh")], capture_output=True, text=True,
                       env={**os.environ, "PYTHON": sys.executable})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "buf lint clean, no breaking change, generated code fresh" in r.stdout


@needs_buf
def test_check_fails_when_a_proto_changes_without_regenerating(tmp_path):
    shutil.copytree(ROOT / "proto", tmp_path / "proto", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")     # generate.sh reads the pin
    proto = tmp_path / "proto" / "pagetide" / "v1" / "agent.proto"
    proto.write_text(proto.read_text().replace(
        "message ListHostsRequest {}", "message ListHostsRequest {\n  // A new field.\n  bool verbose = 1;\n}"))
    r = subprocess.run(["bash", str(tmp_path / "proto" / "check.sh")], capture_output=True, text=True,
                       env={**os.environ, "PYTHON": sys.executable})
    assert r.returncode == 1
    assert "generated code is stale: run proto/generate.sh" in r.stderr
    assert "agent_pb2.py" in r.stderr


@needs_buf
def test_check_fails_when_a_field_is_removed_from_the_api(tmp_path):
    shutil.copytree(ROOT / "proto", tmp_path / "proto", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    proto = tmp_path / "proto" / "pagetide" / "v1" / "agent.proto"
    text = proto.read_text()
    assert "  bool waited_out = 8;\n" in text
    proto.write_text(text.replace("  bool waited_out = 8;\n", ""))
    r = subprocess.run(["bash", str(tmp_path / "proto" / "check.sh")], capture_output=True, text=True,
                       env={**os.environ, "PYTHON": sys.executable})
    assert r.returncode == 1
    assert "buf breaking" in r.stderr and "waited_out" in r.stdout + r.stderr


def test_page_lists_round_trip_as_little_endian_arrays_and_bad_lengths_are_refused():
    from pagetide.controller.convert import candidates

    addrs = np.array([16 << 40, (16 << 40) + 4096], dtype=np.uint64)
    p = agent_pb2.PageList(count=2, addresses=addrs.astype("<u8").tobytes(), heat=bytes([200, 17]),
                           nodes=np.array([1, 0], "<i2").tobytes())
    c = candidates(agent_pb2.PageList.FromString(p.SerializeToString()))
    assert c.addresses.tolist() == addrs.tolist() and c.heat.tolist() == [200, 17] and c.node.tolist() == [1, 0]
    with pytest.raises(ValueError, match="heat"):
        candidates(agent_pb2.PageList(count=2, addresses=p.addresses, heat=b"\x01", nodes=p.nodes))
