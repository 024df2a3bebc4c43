"""Real promotion and demotion across real NUMA nodes, inside a qemu guest this test boots (harness/qemu.py):
Debian's stock kernel, two nodes of 512 MiB, node 1 CPU-less. In the guest, `pagetide.harness.guest` runs a
workload writing a hot quarter of its 8192 pages, the agent's linux backend with the soft-dirty tracker, and
the controller's host client with the VM's DRAM capped at a quarter; the placement is read back with
move_pages queries, from frame numbers and from /proc/PID/numa_maps. Where a 6.11+ kernel with DAMON is in /boot
(Debian's 6.12 backport; .ci/run does not install it), DAMOS migrate_hot/migrate_cold in an NVDIMM guest too."""

import json
import sys

import pytest

from pagetide.harness import qemu
from pagetide.harness.guest import PAGE

pytestmark = [pytest.mark.qemu, pytest.mark.skipif(bool(qemu.missing()), reason=qemu.missing() or "ok")]


def test_pagetide_promotes_the_hot_pages_to_node_0_and_demotes_the_cold_ones_to_node_1(tmp_path):
    run = qemu.boot(f"D=$(pwd); cd {qemu.Path(__file__).resolve().parent.parent} && {sys.executable} -m "
                    "pagetide.harness.guest --mode pagetide --pages 8192 --seconds 30 --out $D/result.json\n",
                    timeout=240, run_dir=tmp_path / "guest")
    assert run.returncode == 0, run.log[-3000:] + run.console[-2000:]
    r = json.loads((run.directory / "result.json").read_text())
    hot, cold = r["hot_pages"], r["pages"] - r["hot_pages"]
    assert r["tracker"] == "soft_dirty" and r["tenant_kind"] == "vm" and r["footprint_pages"] == r["pages"]
    assert r["knobs_run"]["numa_balancing"] == "0"          # pagetide alone moved pages
    # the workload started with hot and cold pages on both nodes
    assert r["before"]["hot_on_1"] > 0 and r["before"]["cold_on_0"] > 0
    want = {"hot_on_0": hot, "hot_on_1": 0, "cold_on_0": 0, "cold_on_1": cold, "not_found": 0}
    assert r["after"] == want and r["after_by_frame"] == want
    assert r["numa_maps_after"] == {"N0": hot, "N1": cold}
    moved = sum(x["promoted_pages"] + x["demoted_pages"] for x in r["rounds"])
    assert moved == r["before"]["hot_on_1"] + r["before"]["cold_on_0"]          # each misplaced page once
    assert r["vmstat_delta"]["pgmigrate_success"] == moved
    # the agent's own count (its pagetide_migrated_pages series), [source][destination] node
    assert r["move_pages_migrated"] == [[0, r["before"]["cold_on_0"]], [r["before"]["hot_on_1"], 0]]
    assert r["migrated_pages"] == r["move_pages_migrated"] and r["failed_scans"] == 0
    print(f"{len(r['rounds'])} round(s), {moved} pages moved, guest {run.seconds:.1f} s")


DAMOS_KERNEL = qemu.damos_release()


@pytest.mark.skipif(DAMOS_KERNEL is None, reason="no kernel with DAMOS migrate actions in /boot (6.11+ with "
                    "CONFIG_DAMON_SYSFS: apt-get install linux-image-6.12.*+deb12-amd64; .ci/run does not)")
@pytest.mark.skipif(bool(DAMOS_KERNEL and qemu.missing(DAMOS_KERNEL)),
                    reason=(DAMOS_KERNEL and qemu.missing(DAMOS_KERNEL)) or "ok")
def test_damos_migrate_hot_and_cold_move_pages_between_the_guests_nodes(tmp_path):
    run = qemu.boot(qemu.SETUP_NVDIMM + f"D=$(pwd); cd {qemu.Path(__file__).resolve().parent.parent} && "
                    f"{sys.executable} -m pagetide.harness.guest --mode damos --pages 8192 --seconds 15 "
                    "--out $D/result.json\n", layout="nvdimm", release=DAMOS_KERNEL, timeout=240,
                    run_dir=tmp_path / "guest")
    assert run.returncode == 0, run.log[-3000:] + run.console[-2000:]
    r = json.loads((run.directory / "result.json").read_text())
    assert r["kernel"] == DAMOS_KERNEL and r["knobs_damos"]["numa_balancing"] == "0"
    hot, cold = (next(s for s in r["damos"] if s["action"] == a) for a in ("migrate_hot", "migrate_cold"))
    assert (hot["node"], hot["target_nid"], cold["node"], cold["target_nid"]) == (1, 0, 0, 1)
    # migrate_hot found the workload's accessed pages on node 1 and moved some to node 0
    assert hot["stats"]["sz_applied"] > 0 and r["after_by_frame"]["hot_on_0"] > r["before"]["hot_on_0"]
    # what the kdamonds applied the kernel migrated (pgmigrate_success also counts compaction's, if any)
    applied = sum(s["stats"]["sz_applied"] for s in r["damos"]) // PAGE
    assert r["vmstat_delta"]["pgmigrate_success"] >= applied > 0
    print(f"hot on node 0 {r['before']['hot_on_0']} -> {r['after_by_frame']['hot_on_0']} of {r['hot_pages']}, "
          f"{applied} pages migrated, guest {run.seconds:.1f} s")
