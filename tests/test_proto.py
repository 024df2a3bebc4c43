import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pagetide.v1 import agent_pb2, controller_pb2, types_pb2

ROOT = Path(__file__).resolve().parent.parent


def test_a_full_move_batch_of_1024_small_pages_serialises_far_below_grpc_limits():
    base = 16 << 40
    call = agent_pb2.MoveCall(tenant="vm0", addresses=[base + 4096 * i for i in range(1024)], nodes=[1] * 1024)
    assert call.ByteSize() < 16 * 1024       # packed varints: ~7 bytes an address
    req = agent_pb2.MovePagesRequest(host_id="host-00", batch_id="r1-0", calls=[call] * 64)
    assert req.ByteSize() < 1 << 20          # a full request of 64 calls stays under protobuf's advised 1 MB


def test_move_statuses_carry_negative_errnos():
    resp = agent_pb2.MoveCallResult(status=[1, -2, -14, -16, -12, -22])
    back = agent_pb2.MoveCallResult.FromString(resp.SerializeToString())
    assert list(back.status) == [1, -2, -14, -16, -12, -22]


def test_enums_start_with_unspecified_zero():
    assert types_pb2.NODE_TYPE_UNSPECIFIED == 0 and types_pb2.TENANT_KIND_UNSPECIFIED == 0
    assert controller_pb2.VmPolicy().weight == 0.0   # unset: the server applies the default of 1


@pytest.mark.skipif(shutil.which("buf", path=os.path.dirname(sys.executable)) is None
                    and shutil.which("buf") is None, reason="buf (pip install buf-bin) is not installed")
def test_api_is_lint_clean_and_generated_code_is_fresh():
    r = subprocess.run(["bash", str(ROOT / "proto" / "check.sh")], capture_output=True, text=True,
                       env={**os.environ, "PYTHON": sys.executable})
    assert r.returncode == 0, r.stderr


def test_page_lists_round_trip_as_little_endian_arrays_and_bad_lengths_are_refused():
    import numpy as np

    from pagetide.controller.convert import candidates

    addrs = np.array([16 << 40, (16 << 40) + 4096], dtype=np.uint64)
    p = agent_pb2.PageList(count=2, addresses=addrs.astype("<u8").tobytes(), heat=bytes([200, 17]),
                           nodes=np.array([1, 0], "<i2").tobytes())
    c = candidates(agent_pb2.PageList.FromString(p.SerializeToString()))
    assert c.addresses.tolist() == addrs.tolist() and c.heat.tolist() == [200, 17] and c.node.tolist() == [1, 0]
    with pytest.raises(ValueError, match="heat"):
        candidates(agent_pb2.PageList(count=2, addresses=p.addresses, heat=b"\x01", nodes=p.nodes))
