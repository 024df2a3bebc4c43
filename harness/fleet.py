"""Generated fleets: N host scenarios for the multi-host simulation, deterministic under a seed (`pagetide sim
--hosts N --seed S --host-memory M`; the shipped fleet file harness/fleets/default.yaml is this mix for 4
hosts, seed 1, 2 GiB).

Every host has one DRAM node holding 1/4 of its memory and a PMEM peer with the rest, and a mix of VMs of
different sizes running different workloads of the suite (DESIGN.md section 5), filling ~80% of memory.
"""

from __future__ import annotations

import numpy as np

from pagetide.agent.scenario import Scenario, parse_scenario, with_tiering
from pagetide.harness.fleetfile import Fleet, Host

MIX = ("zipf", "hotset", "drift", "scan+hot", "idle-vm", "write-heavy", "phases")
VM_SIZES_MIB = (128, 192, 256, 384, 512)


def host_dict(i: int, seed: int, memory_mib: int = 2048, duration: str = "60s", tick: str = "100ms",
              epoch: str = "1s", samples: int = 8192) -> dict:
    rng = np.random.default_rng([seed, i])
    dram = memory_mib // 4
    budget = int(memory_mib * 0.8)
    tenants = []
    used = 0
    k = 0
    while True:
        size = int(rng.choice(VM_SIZES_MIB)) * memory_mib // 2048 // 2 * 2
        if used + size > budget or size < 2:
            break
        wl = MIX[(i + k) % len(MIX)] if k < len(MIX) else str(rng.choice(MIX))
        tenants.append({"name": f"vm{k}-{wl.replace('+', '-')}", "kind": "vm", "footprint": f"{size}MiB",
                        "workload": {"type": wl, "samples": samples, "rate": f"{int(rng.integers(20, 80))}M/s"}})
        used += size
        k += 1
    return {
        "name": f"host-{i:02d}", "seed": seed * 1000 + i, "tick": tick, "duration": duration, "epoch": epoch,
        "host": {"nodes": [{"id": 0, "type": "dram", "capacity": f"{dram}MiB", "peer_node": 1},
                           {"id": 1, "type": "pmem", "capacity": f"{memory_mib - dram}MiB"}],
                 "kernel": {"swap": f"{memory_mib}MiB"}},
        "tenants": tenants,
    }


def fleet_dicts(n_hosts: int, seed: int = 1, tiering: str | None = None, **kw) -> list[dict]:
    """The fleet's host scenarios as scenario-schema dicts (with `tiering` as every host's kernel mode)."""
    return [with_tiering(host_dict(i, seed, **kw), tiering) for i in range(n_hosts)]


def fleet(n_hosts: int, seed: int = 1, tiering: str | None = None, **kw) -> list[Scenario]:
    return [parse_scenario(d) for d in fleet_dicts(n_hosts, seed, tiering, **kw)]


def generated_fleet(n_hosts: int, seed: int = 1, **kw) -> Fleet:
    """The generated fleet as a Fleet of one host class, "host"; nothing arrives or leaves."""
    hosts = tuple(Host(d["name"], "host", d) for d in fleet_dicts(n_hosts, seed, **kw))
    for h in hosts:
        parse_scenario(h.scenario)
    return Fleet(name=f"generated-{n_hosts}", seed=seed, duration=60.0, tick=0.1, epoch=1.0, hosts=hosts,
                 classes={"host": tuple(h.name for h in hosts)}, events=(), policies={})
