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

from pagetide.v1 import agent_pb2, agent_pb2_grpc, controller_pb2, controller_pb2_grpc, types_pb2

ROOT = Path(__file__).resolve().parent.parent
BUF = shutil.which("buf", path=sysconfig.get_path("scripts")) or shutil.which("buf")
needs_buf = pytest.mark.skipif(BUF is None, reason="buf is not installed (pip install buf-bin, part of .[dev])")
TOP_OF_USER_SPACE = 1 << 47          # x86-64 user addresses are below 2^47: at most 7 bytes as a varint


def test_generated_modules_import_and_carry_both_services():
    assert [m.name for m in agent_pb2.DESCRIPTOR.services_by_name["AgentService"].methods] == [
        "ListHosts", "GetTopology", "GetHeatReport", "MovePages", "AdvanceClock", "GetStats"]
    assert [m.name for m in controller_pb2.DESCRIPTOR.services_by_name["ControllerService"].methods] == [
        "SetVmPolicy", "GetVmPolicy", "ListVmPolicies", "GetStatus"]
    assert agent_pb2_grpc.AgentServiceStub and controller_pb2_grpc.ControllerServiceStub
    assert agent_pb2.DESCRIPTOR.package == "pagetide.v1"


def test_a_full_move_batch_of_1024_small_pages_serialises_far_below_grpc_limits():
    # worst case for size: the highest user addresses, and 1-byte node ids
    addrs = [TOP_OF_USER_SPACE - 4096 * (i + 1) for i in range(1024)]
    call = agent_pb2.MoveCall(tenant="vm0", addresses=addrs, nodes=[1] * 1024, sw_young=True)
    assert call.ByteSize() <= 1024 * (7 + 1) + 32       # packed: 7 bytes an address, 1 a node, no per-page tag
    req = agent_pb2.MovePagesRequest(host_id="host-00", batch_id="r1-0", calls=[call] * 64)
    assert req.ByteSize() < 600 * 1024                  # the 64-call maximum stays under protobuf's advised 1 MB


def test_move_statuses_carry_negative_errnos_like_move_pages():
    statuses = [1, -errno.ENOENT, -errno.EFAULT, -errno.EACCES, -errno.EBUSY, -errno.ENOMEM, -errno.EINVAL]
    assert statuses[1:] == [-2, -14, -13, -16, -12, -22]
    back = agent_pb2.MoveCallResult.FromString(agent_pb2.MoveCallResult(status=statuses).SerializeToString())
    assert list(back.status) == statuses
    assert agent_pb2.MoveCallResult.DESCRIPTOR.fields_by_name["status"].type == \
        agent_pb2.MoveCallResult.DESCRIPTOR.fields_by_name["status"].TYPE_SINT32   # zigzag: -2 costs 1 byte


def test_every_enum_starts_with_unspecified_zero():
    enums = [e for mod in (types_pb2, agent_pb2, controller_pb2) for e in mod.DESCRIPTOR.enum_types_by_name.values()]
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
    assert "buf lint clean, generated code fresh" in r.stdout


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


def test_page_lists_round_trip_as_little_endian_arrays_and_bad_lengths_are_refused():
    from pagetide.controller.convert import candidates

    addrs = np.array([16 << 40, (16 << 40) + 4096], dtype=np.uint64)
    p = agent_pb2.PageList(count=2, addresses=addrs.astype("<u8").tobytes(), heat=bytes([200, 17]),
                           nodes=np.array([1, 0], "<i2").tobytes())
    c = candidates(agent_pb2.PageList.FromString(p.SerializeToString()))
    assert c.addresses.tolist() == addrs.tolist() and c.heat.tolist() == [200, 17] and c.node.tolist() == [1, 0]
    with pytest.raises(ValueError, match="heat"):
        candidates(agent_pb2.PageList(count=2, addresses=p.addresses, heat=b"\x01", nodes=p.nodes))
