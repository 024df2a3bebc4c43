"""Fleet files: the YAML description of a whole simulated fleet, validated before anything starts.

A fleet file names host classes (each a scenario's `host` section -- nodes of types dram/cxl/pmem with
capacities and peer nodes, the kernel's settings and tiering mode, the tracker -- times a count), a catalogue
of VMs (footprint, workload, policy, labels), which VMs each host starts with, VM arrivals, departures and
resizes over time, and the controller's policy and options:

    seed: 1                       # host i (file order, from 0) gets scenario seed seed x 1000 + i
    duration: 60s                 # also tick (100ms) and epoch (1s, the scan period) as in scenarios
    oracles: false                # every host's accounting without oracles, as a scenario's (default true)
    controller: {policy: pagetide, options: {hysteresis_bins: 3}, bandwidth: 256MiB, max_candidates: 4096}
    host_classes:
      pmem:                       # hosts pmem-00, pmem-01, ... (`names: host` names them host-00, ...)
        count: 2
        host: {nodes: [...], kernel: {...}, tracker: idle_pages}      # a scenario's host section
        vms: [{vm: web, count: 2}]                                    # every host of the class starts these
    vms:                          # the catalogue: a scenario's tenant keys, `policy` and no name
      web: {footprint: 256MiB, workload: {type: zipf, rate: 50M/s}, labels: {team: web},
            policy: {min: 25%, max: 1GiB, weight: 2, pin: dram, migration: on, max_slowdown: 1.5}}
    hosts:                        # more VMs for single hosts
      pmem-01: [{vm: web, name: web-big, footprint: 512MiB, workload: {rate: 80M/s}}]
    events:
      - {at: 20s, arrive: {host: pmem-00, vm: web, name: web-late}}
      - {at: 30s, resize: {host: pmem-00, vm: web-0, footprint: 384MiB}}
      - {at: 40s, depart: {host: pmem-01, vm: web-big}}

A placement (in a class's `vms`, `hosts` or an arrival) names a catalogue entry and may give the tenant's
`name` (default: the entry's name; with `count: N`, NAME-0 .. NAME-N-1) and override any of its keys
(`workload` and `labels` are merged key by key, the others replaced). Events happen at the first scan period
boundary at or after `at`. Every size, duration and ratio is a human unit. Each host's scenario, at start
and after every event, is validated by the scenario parser (agent/scenario.py), so a fleet file accepts what
a scenario does; every error is a `FleetError` naming the fleet file's own dotted key.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any


from pagetide.agent.scenario import ScenarioError, parse_scenario, read_yaml, with_tiering
from pagetide.common import units

SHIPPED = ("default", "churn", "advice", "advice-swap")     # harness/fleets/NAME.yaml
TOP_KEYS = {"name", "seed", "tick", "duration", "epoch", "oracles", "controller", "host_classes", "vms", "hosts",
            "events"}
VM_KEYS = {"kind", "footprint", "home_node", "page_size", "workload", "prefault", "pinned", "labels", "interleave",
           "policy"}
PLACE_KEYS = VM_KEYS | {"vm", "name", "count"}
POLICY_KEYS = {"min", "max", "weight", "pin", "migration", "max_slowdown"}
EVENT_KINDS = ("arrive", "depart", "resize")


class FleetError(ValueError):
    """An invalid fleet file; the message starts with the dotted key at fault."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


@dataclass(frozen=True)
class Controller:
    """The controller's settings; None: the command line's (or its defaults)."""
    policy: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    bandwidth: int | None = None          # bytes per second per host
    max_candidates: int | None = None


@dataclass(frozen=True)
class Host:
    name: str
    host_class: str
    scenario: dict                        # the scenario mapping the host's agent serves (validated)


@dataclass(frozen=True)
class Event:
    """A VM arriving (`tenant`: its scenario mapping), departing, or resized to `footprint` bytes."""
    time: float                           # seconds (`at`)
    kind: str                             # arrive, depart, resize
    host: str
    vm: str                               # the tenant's name
    key: str                              # its key in the file, e.g. events[2]
    tenant: dict | None = None
    footprint: int = 0
    policy: Any = None                    # a controller VmPolicy for an arrival, or None


@dataclass(frozen=True)
class Fleet:
    name: str
    seed: int
    duration: float
    tick: float
    epoch: float
    hosts: tuple[Host, ...]
    classes: dict[str, tuple[str, ...]]   # class -> its hosts, in order
    events: tuple[Event, ...]             # by time, then file order
    policies: dict[tuple[str, str], Any]  # (host, VM) -> controller VmPolicy, for the VMs at start
    controller: Controller = Controller()

    def scenarios(self, tiering: str | None = None) -> list[dict]:
        """Every host's scenario mapping (with `tiering` as its kernel mode, if given)."""
        return [with_tiering(copy.deepcopy(h.scenario), tiering) for h in self.hosts]


def _mapping(d: Any, key: str, allowed: set[str] | None = None, required: tuple[str, ...] = ()) -> dict:
    if not isinstance(d, dict):
        raise FleetError(key, f"expected a mapping, got {type(d).__name__}")
    if allowed is not None:
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise FleetError(f"{key}.{unknown[0]}" if key else unknown[0],
                             f"unknown key (valid keys: {', '.join(sorted(allowed))})")
    for r in required:
        if r not in d:
            raise FleetError(f"{key}.{r}" if key else r, "required key is missing")
    return d


def _list(d: Any, key: str) -> list:
    if not isinstance(d, list):
        raise FleetError(key, f"expected a list, got {type(d).__name__}")
    return d


def _name(v: Any, key: str) -> str:
    if not isinstance(v, str) or not v or not v.replace("-", "").replace("_", "").isalnum():
        raise FleetError(key, f"must be a non-empty name of letters, digits, - and _, got {v!r}")
    return v


def _unit(parser, v: Any, key: str):
    try:
        return parser(v)
    except (ValueError, TypeError) as e:
        raise FleetError(key, str(e)) from None


def _count(v: Any, key: str, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise FleetError(key, f"expected an integer >= {lo}, got {v!r}")
    return v


def parse_policy(d: Any, key: str):
    """A VM's policy, `{min, max, weight, pin, migration, max_slowdown}` as `pagetide policy set` takes them
    (min/max: a share like 25% or a size like 4GiB; max_slowdown: a ratio >= 1, the fleet advice's limit for
    the VM), checked as ControllerService checks one."""
    from pagetide.controller.requests import Invalid, vm_policy
    from pagetide.v1 import controller_pb2 as pb

    _mapping(d, key, POLICY_KEYS)
    p = pb.VmPolicy()
    if "weight" in d:
        w = d["weight"]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
            raise FleetError(f"{key}.weight", f"must be a number > 0, got {w!r}")
        p.weight = float(w)
    for side in ("min", "max"):
        if side not in d:
            continue
        v = d[side]
        if isinstance(v, str) and v.strip().endswith("%"):
            setattr(p, f"{side}_dram_share", _unit(units.parse_ratio, v, f"{key}.{side}"))
        else:
            setattr(p, f"{side}_dram_bytes", _unit(units.parse_size, v, f"{key}.{side}"))
    if "pin" in d:
        tiers = {"dram": pb.TIER_DRAM, "slow": pb.TIER_SLOW}
        if d["pin"] not in tiers:
            raise FleetError(f"{key}.pin", f"must be dram or slow, got {d['pin']!r}")
        p.pinned_tier = tiers[d["pin"]]
    if "migration" in d:
        m = {True: "on", False: "off"}.get(d["migration"], d["migration"])   # YAML reads on/off as booleans
        if m not in ("on", "off"):
            raise FleetError(f"{key}.migration", f"must be on or off, got {d['migration']!r}")
        p.migration_disabled = m == "off"
    if "max_slowdown" in d:
        x = d["max_slowdown"]
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise FleetError(f"{key}.max_slowdown", f"must be a ratio >= 1 (a number), got {x!r}")
        p.max_slowdown = float(x)              # its range is checked below, as the controller checks it
    try:
        return vm_policy(p, where=key)
    except Invalid as e:
        side = {"min_dram_bytes": "min", "min_dram_share": "min", "max_dram_bytes": "max",
                "max_dram_share": "max"}.get(e.field.rpartition(".")[2], e.field.rpartition(".")[2])
        raise FleetError(f"{key}.{side}", e.reason) from None


@dataclass
class _Tenant:
    """A tenant being placed: its scenario mapping, its policy, and where each of its keys came from."""
    spec: dict
    policy: Any
    origin: dict[str, str]                # tenant key (or workload.KEY / labels) -> fleet key
    default: str                          # fleet key of what is not overridden (its catalogue entry)

    def key_of(self, sub: str) -> str:
        """The fleet key a scenario error's sub-key (e.g. "workload.rate") came from."""
        head = sub.split(".")[0]
        for k in (".".join(sub.split(".")[:2]), head):
            if k in self.origin:
                return f"{self.origin[k]}{sub[len(k):]}"
        return f"{self.default}.{sub}" if sub else self.default


def _place(entry: Any, key: str, catalogue: dict[str, tuple[dict, Any]]) -> list[_Tenant]:
    """The tenants one placement entry means (several with `count`)."""
    _mapping(entry, key, PLACE_KEYS, ("vm",))
    vm = entry["vm"]
    if vm not in catalogue:
        raise FleetError(f"{key}.vm", f"no VM {vm!r} in the catalogue (vms: {', '.join(catalogue) or 'none'})")
    base, policy = catalogue[vm]
    spec = copy.deepcopy(base)
    origin: dict[str, str] = {}
    for k, v in entry.items():
        if k in ("vm", "name", "count"):
            continue
        if k in ("workload", "labels"):
            _mapping(v, f"{key}.{k}")
            spec[k] = {**spec.get(k, {}), **v}
            origin.update({f"{k}.{x}": f"{key}.{k}.{x}" for x in v})
            if k == "workload" and "type" in v and v["type"] != base["workload"].get("type"):
                spec[k] = dict(v)          # another type: the catalogue's options are not this type's
        elif k == "policy":
            policy = parse_policy(v, f"{key}.policy")
        else:
            spec[k] = v
            origin[k] = f"{key}.{k}"
    name = _name(entry.get("name", vm), f"{key}.name")
    n = _count(entry["count"], f"{key}.count") if "count" in entry else None
    names = [name] if n is None else [f"{name}-{j}" for j in range(n)]
    return [_Tenant({"name": nm, **spec}, policy, origin, f"vms.{vm}") for nm in names]


def _catalogue(d: Any) -> dict[str, tuple[dict, Any]]:
    out = {}
    for vm, e in _mapping(d, "vms").items():
        key = f"vms.{vm}"
        _name(vm, key)
        _mapping(e, key, VM_KEYS, ("footprint", "workload"))
        _mapping(e["workload"], f"{key}.workload")
        policy = parse_policy(e["policy"], f"{key}.policy") if "policy" in e else None
        out[vm] = ({k: copy.deepcopy(v) for k, v in e.items() if k != "policy"}, policy)
    return out


def _check(scenario: dict, tenants: list[_Tenant], where: str, class_key: str) -> None:
    """Validate a host's scenario with its tenants now; a ScenarioError is re-keyed to the fleet file: host
    keys under the class, tenant keys to where each came from, the tenant set as a whole to `where`."""
    try:
        parse_scenario({**scenario, "tenants": [t.spec for t in tenants]})
    except ScenarioError as e:
        k = e.key
        if k == "host" or k.startswith(("host.", "host[")):
            raise FleetError(f"{class_key}.{k}", e.reason) from None
        if k.startswith("tenants["):
            i = int(k[len("tenants["):k.index("]")])
            sub = k[k.index("]") + 2:] if len(k) > k.index("]") + 1 else ""
            if sub == "name" and "duplicate" in e.reason:
                raise FleetError(where, e.reason) from None
            raise FleetError(tenants[i].key_of(sub), e.reason) from None
        raise FleetError(where if k == "tenants" else k, e.reason) from None


def _parse_event(i: int, e: Any, hosts: dict[str, dict], duration: float, catalogue) -> tuple[Event, list]:
    key = f"events[{i}]"
    _mapping(e, key, {"at", *EVENT_KINDS}, ("at",))
    at = _unit(units.parse_duration, e["at"], f"{key}.at")
    if not 0 <= at < duration:
        raise FleetError(f"{key}.at", f"must be within the run (0 to {units.format_duration(duration)}), "
                                      f"got {e['at']!r}")
    kinds = [k for k in EVENT_KINDS if k in e]
    if len(kinds) != 1:
        raise FleetError(key, f"give exactly one of {', '.join(EVENT_KINDS)}, got {kinds or 'none'}")
    kind = kinds[0]
    body = e[kind]
    k = f"{key}.{kind}"
    if kind == "arrive":
        _mapping(body, k, PLACE_KEYS | {"host"}, ("host", "vm"))
    else:
        _mapping(body, k, {"host", "vm", "footprint"} if kind == "resize" else {"host", "vm"},
                 ("host", "vm", "footprint") if kind == "resize" else ("host", "vm"))
    host = body["host"]
    if host not in hosts:
        raise FleetError(f"{k}.host", f"no host {host!r} in the fleet (hosts: {', '.join(hosts)})")
    if kind == "arrive":
        if "count" in body:
            raise FleetError(f"{k}.count", "an arrival is one VM: give one event per VM")
        t = _place({x: v for x, v in body.items() if x != "host"}, k, catalogue)[0]
        return Event(at, kind, host, t.spec["name"], key, tenant=t.spec, policy=t.policy), [t]
    vm = _name(body["vm"], f"{k}.vm")
    fp = _unit(units.parse_size, body["footprint"], f"{k}.footprint") if kind == "resize" else 0
    return Event(at, kind, host, vm, key, footprint=fp), []


def parse_fleet(d: Any, name: str = "fleet") -> Fleet:
    """Validate a fleet mapping (as loaded from YAML) into a Fleet."""
    _mapping(d, "", TOP_KEYS, ("host_classes", "vms"))
    seed = _count(d.get("seed", 1), "seed", 0)
    times = {k: _unit(units.parse_duration, d.get(k, dflt), k)
             for k, dflt in (("tick", "100ms"), ("duration", "60s"), ("epoch", "1s"))}
    for k, v in times.items():
        if v <= 0:
            raise FleetError(k, f"must be positive, got {d.get(k)!r}")
    controller = _controller(d.get("controller", {}))
    catalogue = _catalogue(d["vms"])
    classes = _mapping(d["host_classes"], "host_classes")
    if not classes:
        raise FleetError("host_classes", "expected at least one host class")
    hosts: dict[str, dict] = {}          # name -> {class, scenario, class_key}
    placed: dict[str, list[_Tenant]] = {}
    by_class: dict[str, tuple[str, ...]] = {}
    i = 0
    for cname, c in classes.items():
        ckey = f"host_classes.{cname}"
        _name(cname, ckey)
        _mapping(c, ckey, {"count", "host", "vms", "names"}, ("host",))
        count = _count(c.get("count", 1), f"{ckey}.count")
        prefix = _name(c.get("names", cname), f"{ckey}.names")
        _mapping(c["host"], f"{ckey}.host")
        names = []
        for j in range(count):
            hname = f"{prefix}-{j:02d}"
            if hname in hosts:
                raise FleetError(f"{ckey}.names", f"host {hname!r} is also a host of class {hosts[hname]['class']!r}")
            scenario = {"name": hname, "seed": seed * 1000 + i, "tick": d.get("tick", "100ms"),
                        "duration": d.get("duration", "60s"), "epoch": d.get("epoch", "1s"),
                        **({"oracles": d["oracles"]} if "oracles" in d else {}), "host": copy.deepcopy(c["host"])}
            hosts[hname] = {"class": cname, "scenario": scenario, "class_key": ckey}
            placed[hname] = [t for k, e in enumerate(_list(c.get("vms", []), f"{ckey}.vms"))
                             for t in _place(e, f"{ckey}.vms[{k}]", catalogue)]
            names.append(hname)
            i += 1
        by_class[cname] = tuple(names)
    for hname, entries in _mapping(d.get("hosts", {}), "hosts").items():
        if hname not in hosts:
            raise FleetError(f"hosts.{hname}", f"no host {hname!r} in the fleet (hosts: {', '.join(hosts)})")
        placed[hname] += [t for k, e in enumerate(_list(entries, f"hosts.{hname}"))
                          for t in _place(e, f"hosts.{hname}[{k}]", catalogue)]
    for hname, h in hosts.items():
        if not placed[hname]:
            raise FleetError(f"{h['class_key']}.vms", f"host {hname!r} starts with no VM; every host needs one "
                                                      "at start (VMs may leave later)")
        _check(h["scenario"], placed[hname], f"hosts.{hname}", h["class_key"])
    events = sorted((_parse_event(k, e, hosts, times["duration"], catalogue)
                     for k, e in enumerate(_list(d.get("events", []), "events"))),
                    key=lambda x: (x[0].time, int(x[0].key[len("events["):-1])))
    now = {h: list(ts) for h, ts in placed.items()}
    for ev, new in events:
        ts = now[ev.host]
        names = [t.spec["name"] for t in ts]
        h = hosts[ev.host]
        k = f"{ev.key}.{ev.kind}"
        if ev.kind == "arrive":
            if ev.vm in names:
                raise FleetError(f"{k}.name", f"VM {ev.vm!r} is already on host {ev.host!r} then")
            ts.append(new[0])
        elif ev.vm not in names:
            raise FleetError(f"{k}.vm", f"no VM {ev.vm!r} on host {ev.host!r} then "
                                        f"(there: {', '.join(names) or 'none'})")
        elif ev.kind == "depart":
            del ts[names.index(ev.vm)]
        else:
            old = ts[names.index(ev.vm)]
            ts[names.index(ev.vm)] = _Tenant({**old.spec, "footprint": ev.footprint}, old.policy,
                                             {**old.origin, "footprint": f"{k}.footprint"}, old.default)
        if ts:
            _check(h["scenario"], ts, k, h["class_key"])
    return Fleet(name=str(d.get("name", name)), seed=seed, duration=times["duration"], tick=times["tick"],
                 epoch=times["epoch"],
                 hosts=tuple(Host(n, h["class"], {**h["scenario"], "tenants": [t.spec for t in placed[n]]})
                             for n, h in hosts.items()),
                 classes=by_class, events=tuple(e for e, _ in events),
                 policies={(h, t.spec["name"]): t.policy for h, ts in placed.items() for t in ts
                           if t.policy is not None},
                 controller=controller)


def _controller(d: Any) -> Controller:
    from pagetide.controller.policies import POLICIES, make_policy

    _mapping(d, "controller", {"policy", "options", "bandwidth", "max_candidates"})
    policy = d.get("policy")
    if policy is not None and policy not in POLICIES:
        raise FleetError("controller.policy", f"unknown policy {policy!r}; valid: {', '.join(sorted(POLICIES))}")
    options = dict(_mapping(d.get("options", {}), "controller.options"))
    if options:
        try:
            make_policy(policy or "pagetide", **options)
        except ValueError as e:
            bad = next((k for k in options if f".{k}:" in str(e) or f"{k!r}" in str(e)), None)
            raise FleetError(f"controller.options.{bad}" if bad else "controller.options", str(e)) from None
    bw = _unit(units.parse_bandwidth, d["bandwidth"], "controller.bandwidth") if "bandwidth" in d else None
    if bw is not None and bw <= 0:
        raise FleetError("controller.bandwidth", f"must be positive, got {d['bandwidth']!r}")
    mc = _count(d["max_candidates"], "controller.max_candidates") if "max_candidates" in d else None
    return Controller(policy=policy, options=options, bandwidth=int(bw) if bw is not None else None,
                      max_candidates=mc)


def shipped_path(name: str) -> str:
    return str(resources.files("pagetide.harness") / "fleets" / f"{name}.yaml")


def load_fleet(path: str | Path, seed: int | None = None) -> Fleet:
    """Read and validate a fleet file (with `seed` instead of its own, if given); a bare shipped name
    (default, churn, advice, advice-swap) means the shipped file, ./NAME a file of that name here."""
    p = Path(shipped_path(str(path)) if str(path) in SHIPPED else path)
    data = read_yaml(p, FleetError, key=str(path))
    if seed is not None and isinstance(data, dict):
        data = {**data, "seed": seed}
    return parse_fleet(data, name=p.stem)
