"""deploy/ against the code it runs: every manifest parses; every pagetide command line in the compose file, the
systemd units, the Kubernetes manifests and the Ray cluster YAML parses with the real CLI, naming each flag
exactly (a renamed flag breaks this test, abbreviations do not count); the ports and files they name agree with
each other and exist; Prometheus configurations, alert rules and their unit tests pass promtool; the dashboards
are what harness/dashboards.py builds with grafana-foundation-sdk, read back by the SDK's models, and query
only metrics the code exports."""

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
import yaml

from pagetide.harness.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
DAEMONSET = DEPLOY / "kubernetes" / "agent-daemonset.yaml"
RAYCLUSTER = DEPLOY / "kubernetes" / "raycluster.yaml"
RAY_LAUNCHER = DEPLOY / "ray" / "cluster.yaml"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
PROM_CONFIGS = [DEPLOY / "prometheus" / "prometheus.yml", DEPLOY / "prometheus" / "compose.yml"]
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
JOBS = {"pagetide-controller", "pagetide-agent"}


def docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kind(path: Path, k: str) -> dict:
    return next(d for d in docs(path) if d.get("kind") == k)


def check_argv(argv: list[str]) -> object:
    """Parse a pagetide command line (without the program name) with the real parser; every --flag must be
    one of its subcommand's option strings exactly."""
    sub = argv[0]
    parser = build_parser(sub)
    subparser = next(a for a in parser._actions if a.dest == "command").choices[sub]
    for tok in argv[1:]:
        if tok.startswith("--"):
            flag = tok.split("=", 1)[0]
            assert flag in subparser._option_string_actions, f"pagetide {sub}: no flag {flag} ({argv})"
    try:
        return parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"pagetide does not accept: {' '.join(argv)}")


def port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def compose_commands() -> dict[str, list[str]]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    return {name: s["command"] for name, s in services.items() if s.get("image", "").startswith("pagetide")}


def unit_commands() -> dict[str, list[str]]:
    out = {}
    for u in UNITS:
        line = next(ln for ln in u.read_text().splitlines() if ln.startswith("ExecStart="))
        argv = shlex.split(line.removeprefix("ExecStart="))
        assert Path(argv[0]).name == "pagetide", argv[0]
        out[u.name] = argv[1:]
    return out


def pod_containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def launcher_commands() -> list[list[str]]:
    cfg = yaml.safe_load(RAY_LAUNCHER.read_text())
    out = []
    for cmd in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]:
        argv = shlex.split(cmd.replace("nohup ", ""))
        if any(Path(a).name == "pagetide" for a in argv):
            i = next(i for i, a in enumerate(argv) if Path(a).name == "pagetide")
            rest = argv[i + 1:]
            out.append(rest[:rest.index(">")] if ">" in rest else rest)       # up to the log redirection
    return out


def all_commands() -> list[list[str]]:
    cmds = list(compose_commands().values()) + list(unit_commands().values()) + launcher_commands()
    cmds += [c["args"] for c in pod_containers(kind(DAEMONSET, "DaemonSet"))]
    cmds += [c["args"] for c in kind(RAYCLUSTER, "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]
             ["containers"] if c.get("args") and c["args"][0] in ("agent", "controller")]
    return cmds


def test_every_manifest_parses():
    files = [p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml")]
    assert len(files) >= 12
    for p in files:
        assert docs(p), p
    for p in DASHBOARDS:
        json.loads(p.read_text())
    assert len(DASHBOARDS) == 4


def test_every_command_line_parses_with_the_cli_and_names_its_flags_exactly():
    cmds = all_commands()
    assert {c[0] for c in cmds} == {"agent", "controller"} and len(cmds) >= 7
    for argv in cmds:
        check_argv(argv)


def test_a_renamed_flag_is_caught():
    with pytest.raises(AssertionError, match="no flag --metrics-prt"):
        check_argv(["agent", "--metrics-prt", "9465"])
    with pytest.raises(AssertionError, match="no flag --metrics-p"):          # argparse would take the prefix
        check_argv(["agent", "--metrics-p", "9465"])


def test_compose_ports_and_files_agree():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    cmds = {k: check_argv(v) for k, v in compose_commands().items()}
    ctl = cmds["controller"]
    # the controller finds the agents at their services' gRPC ports
    for addr in ctl.agent:
        host, p = addr.rsplit(":", 1)
        assert host in cmds and port(cmds[host].listen) == int(p)
    assert f"127.0.0.1:{port(ctl.listen)}:{port(ctl.listen)}" in services["controller"]["ports"]
    # Prometheus scrapes the ports the commands serve metrics on
    prom = yaml.safe_load((DEPLOY / "prometheus" / "compose.yml").read_text())
    targets = {j["job_name"]: [t for s in j["static_configs"] for t in s["targets"]] for j in prom["scrape_configs"]}
    assert targets["pagetide-controller"] == [f"controller:{ctl.metrics_port}"]
    agents = sorted(k for k, a in cmds.items() if a.command == "agent")
    assert sorted(targets["pagetide-agent"]) == [f"{a}:{cmds[a].metrics_port}" for a in agents]
    for a in cmds.values():
        assert a.metrics_address == "0.0.0.0"     # reachable from Prometheus's container
    # the scenarios the agents serve are in the image (Dockerfile COPY deploy/scenarios /etc/pagetide/scenarios)
    docker = (DEPLOY / "Dockerfile").read_text()
    assert "COPY deploy/scenarios /etc/pagetide/scenarios" in docker
    from pagetide.agent.scenario import load_scenario
    names = set()
    for a in agents:
        (scenario,) = cmds[a].scenario
        local = DEPLOY / "scenarios" / Path(scenario).relative_to("/etc/pagetide/scenarios")
        names.add(load_scenario(str(local)).name)
    assert len(names) == len(agents)             # two agents serving one host id would be refused
    for src in re.findall(r"^COPY (\S+) ", docker, re.M):
        assert (ROOT / src).exists(), src
    # every bind mount's source exists
    for s in services.values():
        for v in s.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert (COMPOSE.parent / src).exists(), v
    graf = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "pagetide.yml").read_text())
    assert provider["providers"][0]["options"]["path"] in graf
    assert (COMPOSE.parent / graf[provider["providers"][0]["options"]["path"]]).resolve() == DASHBOARDS[0].parent


def test_local_prometheus_scrapes_the_ports_the_readme_starts_the_simulation_with():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"pagetide sim [^\n`]*--metrics-port (\d+) --agent-metrics-port (\d+)", readme)
    assert m, "README shows pagetide sim with --metrics-port and --agent-metrics-port"
    sim = check_argv(["sim", "--metrics-port", m.group(1), "--agent-metrics-port", m.group(2)])
    prom = yaml.safe_load(PROM_CONFIGS[0].read_text())
    targets = {j["job_name"]: [t for s in j["static_configs"] for t in s["targets"]] for j in prom["scrape_configs"]}
    assert targets["pagetide-controller"] == [f"127.0.0.1:{sim.metrics_port}"]
    assert targets["pagetide-agent"] == [f"127.0.0.1:{sim.agent_metrics_port + i}" for i in range(sim.agents)]


def test_kubernetes_ports_mounts_and_probes_agree_with_the_commands():
    ds = kind(DAEMONSET, "DaemonSet")
    (c,) = pod_containers(ds)
    a = check_argv(c["args"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"grpc": port(a.listen), "metrics": a.metrics_port}
    assert ds["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(a.metrics_port)
    assert c["readinessProbe"]["grpc"]["port"] == port(a.listen) == c["livenessProbe"]["grpc"]["port"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    (scenario,) = a.scenario
    vol = volumes[mounts[str(Path(scenario).parent)]]
    cm = kind(DAEMONSET, "ConfigMap")
    assert cm["metadata"]["name"] == vol["configMap"]["name"]
    from pagetide.agent.scenario import parse_scenario
    parse_scenario(yaml.safe_load(cm["data"][Path(scenario).name]))
    assert volumes[mounts[str(Path(a.token_file).parent)]]["secret"]["defaultMode"] == 0o400   # refused if wider
    rc = kind(RAYCLUSTER, "RayCluster")
    assert rc["apiVersion"] == "ray.io/v1"
    head = rc["spec"]["headGroupSpec"]["template"]["spec"]
    ctl_c = next(x for x in head["containers"] if x["name"] == "controller")
    ctl = check_argv(ctl_c["args"])
    assert {p["name"]: p["containerPort"] for p in ctl_c["ports"]} == {"grpc": port(ctl.listen),
                                                                       "metrics": ctl.metrics_port}
    gcs = next(p["containerPort"] for x in head["containers"] for p in x.get("ports", []) if p["name"] == "gcs")
    assert ctl.ray_address == f"127.0.0.1:{gcs}"
    svc = kind(RAYCLUSTER, "Service")
    assert {p["targetPort"] for p in svc["spec"]["ports"]} == {port(ctl.listen), ctl.metrics_port}
    cm = kind(RAYCLUSTER, "ConfigMap")
    mounts = {m["mountPath"]: m["name"] for m in ctl_c["volumeMounts"]}
    vols = {v["name"]: v for v in head["volumes"]}
    assert vols[mounts[str(Path(ctl.agents).parent)]]["configMap"]["name"] == cm["metadata"]["name"]
    agents = yaml.safe_load(cm["data"][Path(ctl.agents).name])["agents"]
    assert all(port(x) == port(a.listen) for x in agents)          # the DaemonSet's agents, on the host network
    assert ds["spec"]["template"]["spec"]["hostNetwork"] is True


def test_ray_launcher_and_systemd_units():
    cfg = yaml.safe_load(RAY_LAUNCHER.read_text())
    assert cfg["provider"]["type"] == "local"
    (ctl_argv,) = launcher_commands()
    ctl = check_argv(ctl_argv)
    assert ctl.ray_address == "auto" and ctl.agents == "~/agents.yaml"
    mounts = cfg["file_mounts"]
    assert (ROOT / mounts["/home/pagetide/agents.yaml"]).exists()
    from pagetide.controller.commands.controller import load_agents
    load_agents(str(ROOT / mounts["/home/pagetide/agents.yaml"]))
    units = {k: check_argv(v) for k, v in unit_commands().items()}
    assert set(units) == {"pagetide-agent.service", "pagetide-controller.service"}
    assert units["pagetide-agent.service"].metrics_port == 9465
    assert units["pagetide-controller.service"].metrics_port == 9464


def promtool(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("config", PROM_CONFIGS, ids=lambda p: p.name)
def test_prometheus_configurations_pass_promtool(config):
    r = promtool("check", "config", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    assert {j["job_name"] for j in yaml.safe_load(config.read_text())["scrape_configs"]} == JOBS


def test_alert_rules_pass_promtool_and_their_unit_tests():
    r = promtool("check", "rules", str(ALERTS))
    assert r.returncode == 0 and "SUCCESS: 6 rules found" in r.stdout, r.stdout + r.stderr
    r = promtool("test", "rules", str(DEPLOY / "prometheus" / "alerts_test.yml"))
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    names = {rule["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for rule in g["rules"]}
    assert {"PagetideControllerDown", "PagetideHostsDown", "PagetideRoundTimeOverBudget",
            "PagetideMigrationErrors"} <= names


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every sample name the code exports, from its own registries filled as a run fills them."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from helpers import small_scenario
    from pagetide.agent.metrics import AgentMetrics
    from pagetide.agent.simhost import SimHost
    from pagetide.controller.metrics import Metrics
    from pagetide.harness.simmetrics import SimMetrics
    from test_metrics import _Stats, round_result

    sh = SimHost(small_scenario(), host_id="h0")
    sh.advance(10)
    am = AgentMetrics()
    am.record("h0", sh.usage())
    am.moved("h0", [__import__("numpy").array([-16])])
    am.rpc.observe("/pagetide.v1.AgentService/MovePages", grpc.StatusCode.OK, 0.01)
    am.stale.labels("h0").inc()
    cm = Metrics()
    cm.observe(round_result())
    cm.state({"h0": "up"}, {}, {}, "pagetide")
    cm.host_missed("h0", True)
    r = CollectorRegistry()
    SimMetrics(r).observe({"h0": _Stats()})
    names = set()
    for reg in (am.registry, cm.registry, r):
        for fam in text_string_to_metric_families(generate_latest(reg).decode()):
            names |= {s.name for s in fam.samples}
    return names


def queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every panel target."""
    out = []
    for p in DASHBOARDS:
        d = json.loads(p.read_text())
        for panel in d["panels"]:
            for t in panel.get("targets", []):
                out.append((d["uid"], panel["title"], t["expr"]))
    return out


def test_dashboards_and_alerts_query_only_metrics_the_code_exports(exported):
    used = {(src, m) for src, _, e in queries() for m in re.findall(r"\bpagetide_[a-z0-9_]+", e)}
    rules = ALERTS.read_text()
    used |= {("alerts.yml", m) for m in re.findall(r"\bpagetide_[a-z0-9_]+", rules)}
    missing = sorted((src, m) for src, m in used if m not in exported)
    assert not missing, missing
    assert len({m for _, m in used}) >= 40
    jobs = set(re.findall(r'job="([^"]+)"', rules + "".join(e for _, _, e in queries())))
    assert jobs <= JOBS


def test_dashboards_are_built_by_the_sdk_and_read_back_by_its_models():
    from grafana_foundation_sdk.models.dashboard import Dashboard

    from pagetide.harness import dashboards

    assert dashboards.main(["--check"]) == 0, "deploy/grafana/dashboards is stale"
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "pagetide.yml").read_text())
    assert ds["datasources"][0]["uid"] == dashboards.DATASOURCE_UID
    uids = set()
    for p in DASHBOARDS:
        d = json.loads(p.read_text())
        model = Dashboard.from_json(d)
        assert model.uid == d["uid"] and len(model.panels) == len(d["panels"])
        uids.add(d["uid"])
        ids = [x["id"] for x in d["panels"]]
        assert len(ids) == len(set(ids))
        defined = {v["name"] for v in d.get("templating", {}).get("list", [])}
        for panel in d["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == dashboards.DATASOURCE_UID
            assert panel["targets"], panel["title"]
            for t in panel["targets"]:
                assert t["datasource"]["uid"] == dashboards.DATASOURCE_UID
                used = set(re.findall(r"\$(\w+)", t["expr"])) - {"__rate_interval", "__interval", "__range"}
                assert used <= defined, (d["uid"], panel["title"], used - defined)
    assert uids == {"pagetide-fleet", "pagetide-host", "pagetide-vm", "pagetide-controller"}
    host = json.loads((DEPLOY / "grafana" / "dashboards" / "pagetide-vm.json").read_text())
    assert [v["name"] for v in host["templating"]["list"]] == ["host", "vm"]
