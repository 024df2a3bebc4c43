"""The dashboards and metrics against a live simulation, as CI can prove them without a Grafana server: Debian's
Prometheus scrapes `pagetide sim` (its controller and both agent processes), every panel's query -- Grafana's
variables substituted with label values Prometheus found -- is evaluated through the HTTP API over the run and
must succeed with data; the alert rules load and evaluate; every endpoint passes `promtool check metrics`; and
the scraped values equal the simulation's own results (its JSON summary) once the run is over."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SCRAPE_INTERVAL = 1                  # seconds
RATE_INTERVAL = "10s"                # Grafana: max(4 x scrape interval, $__interval + scrape interval)
START_TIMEOUT = 240.0
pytestmark = pytest.mark.e2e


def binary(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI (.ci/run installs Debian's prometheus)")
        pytest.skip(f"{name} not installed (apt-get install prometheus)")
    return exe


def free_ports(n: int) -> int:
    """A base port with n consecutive free ports after it (checked by binding each)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        socks = []
        try:
            for i in range(n):
                t = socket.socket()
                socks.append(t)
                t.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise RuntimeError("no run of free ports")


def get(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def api(prom: str, path: str, **params) -> dict:
    body = json.loads(get(f"{prom}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}", timeout=30))
    assert body["status"] == "success", body
    return body["data"]


def wait_for(pred, timeout: float, what: str, proc=None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            pytest.fail(f"{what}: the process exited with {proc.returncode}\n{tail}")
        v = pred()
        if v:
            return v
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A finished 2-host simulation whose endpoints linger, scraped by Prometheus every second from its start."""
    prometheus = binary("prometheus")
    tmp = tmp_path_factory.mktemp("dashboards")
    base = free_ports(4)
    ctl_port, agent_base, prom_port = base, base + 1, base + 3
    config = tmp / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL}s", "evaluation_interval": f"{SCRAPE_INTERVAL}s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": "pagetide-controller", "static_configs": [{"targets": [f"127.0.0.1:{ctl_port}"]}]},
            {"job_name": "pagetide-agent", "static_configs": [{"targets": [f"127.0.0.1:{agent_base}",
                                                                          f"127.0.0.1:{agent_base + 1}"]}]}]}))
    prom = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "prometheus.log", "w"))
    out = tmp / "sim.json"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    sim = subprocess.Popen([sys.executable, "-m", "pagetide.harness.cli", "sim", "--hosts", "2", "--agents", "2",
                            "--duration", "25s", "--stats-every", "1", "--metrics-port", str(ctl_port),
                            "--agent-metrics-port", str(agent_base), "--linger", "600s", "--quiet", "--json",
                            str(out)], stdout=subprocess.PIPE, stderr=open(tmp / "sim.err", "w"), text=True, env=env)
    url = f"http://127.0.0.1:{prom_port}"
    try:
        wait_for(lambda: "metrics stay up" in (tmp / "sim.err").read_text(), START_TIMEOUT, "the simulation", sim,
                 tmp / "sim.err")
        # every target up, and scraped a few times since the run ended
        wait_for(lambda: len([r for r in api(url, "query", query='up == 1')["result"]]) == 3, 30, "three targets up",
                 prom, tmp / "prometheus.log")
        time.sleep(3 * SCRAPE_INTERVAL)
        endpoints = {"controller": f"http://127.0.0.1:{ctl_port}/metrics",
                     "agent-0": f"http://127.0.0.1:{agent_base}/metrics",
                     "agent-1": f"http://127.0.0.1:{agent_base + 1}/metrics"}
        scrapes = {k: get(u) for k, u in endpoints.items()}
        yield {"prom": url, "scrapes": scrapes, "sim": sim, "out": out, "tmp": tmp}
    finally:
        for p in (sim, prom):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in (sim, prom):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def results(live):
    """The simulation's own results: SIGTERM ends the linger, then it writes its JSON."""
    sim = live["sim"]
    sim.send_signal(signal.SIGTERM)
    sim.wait(timeout=60)
    assert sim.returncode == 0, (live["tmp"] / "sim.err").read_text()[-3000:]
    return json.loads(live["out"].read_text()), sim.stdout.read()


def variable_values(prom: str, dashboard: dict) -> dict[str, str]:
    """Each variable's first value, as Grafana resolves label_values(metric{...}, label)."""
    values = {}
    for v in dashboard.get("templating", {}).get("list", []):
        m = re.fullmatch(r"label_values\((.+), (\w+)\)", v["query"])
        assert m, v["query"]
        selector = substitute(m.group(1), values)
        found = api(prom, f"label/{m.group(2)}/values", **{"match[]": selector})
        assert found, (v["name"], selector)
        values[v["name"]] = sorted(found)[0]
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__interval", "2s").replace("$__range", "5m")
    for k, v in values.items():
        expr = expr.replace(f"${k}", v)
    assert "$" not in expr, expr
    return expr


def test_every_panel_query_returns_data_from_a_live_simulation(live):
    prom = live["prom"]
    now = time.time()
    start = now - 600                # Prometheus started with the simulation, less than 10 minutes ago
    evaluated = 0
    empty, failed = [], []
    for path in DASHBOARDS:
        d = json.loads(path.read_text())
        values = variable_values(prom, d)
        for panel in d["panels"]:
            for t in panel.get("targets", []):
                expr = substitute(t["expr"], values)
                body = json.loads(get(f"{prom}/api/v1/query_range?" + urllib.parse.urlencode(
                    {"query": expr, "start": start, "end": now, "step": "2s"}), timeout=30))
                evaluated += 1
                if body["status"] != "success":
                    failed.append((d["uid"], panel["title"], expr, body.get("error")))
                elif not body["data"]["result"]:
                    empty.append((d["uid"], panel["title"], expr))
    print(f"{evaluated} panel queries evaluated over {len(DASHBOARDS)} dashboards")
    assert not failed, failed
    assert not empty, empty
    assert evaluated >= 60


def test_alert_rules_load_and_evaluate_against_live_series(live):
    groups = api(live["prom"], "rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == 6
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    firing = {r["name"] for r in rules if r["state"] != "inactive"}
    assert not firing & {"PagetideControllerDown", "PagetideHostsDown", "PagetideAgentDown"}, firing


@pytest.mark.parametrize("endpoint", ["controller", "agent-0", "agent-1"])
def test_every_endpoint_passes_promtool_check_metrics(live, endpoint):
    r = subprocess.run([binary("promtool"), "check", "metrics"], input=live["scrapes"][endpoint],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_scraped_values_equal_the_simulations_own_results(live, results):
    res, table = results
    ctl = parse(live["scrapes"]["controller"])
    agents = {}
    for k in ("agent-0", "agent-1"):
        agents.update(parse(live["scrapes"][k]))
    assert len(res["hosts"]) == 2
    for h in res["hosts"]:
        host = h["host"]
        assert ctl[("pagetide_sim_host_dram_served_ratio", (("host", host),))] == h["dram_share"]
        for v in h["vms"]:
            key = (("host", host), ("vm", v["vm"]))
            # the exposition's float text round-trips: the same numbers the summary table prints
            assert ctl[("pagetide_sim_vm_dram_served_ratio", key)] == v["dram_share"]
            assert ctl[("pagetide_sim_vm_oracle_dram_served_ratio", key)] == v["oracle_share"]
            assert ctl[("pagetide_sim_vm_slowdown_ratio", key)] == v["slowdown"]
            assert f"{v['dram_share'] * 100:.1f}%" in table
        assert ctl[("pagetide_controller_host_rounds_total", (("host", host),))] == h["rounds"] == res["rounds"]
        for direction, key in (("promote", "promoted_bytes"), ("demote", "demoted_bytes")):
            assert ctl[("pagetide_controller_migrated_bytes_total", (("direction", direction), ("host", host)))] == h[key]
        # the agents count the same moves on their side, by tier
        promoted = agents[("pagetide_migrated_bytes_total", (("destination_tier", "dram"), ("host", host),
                                                              ("mover", "controller"), ("source_tier", "pmem")))]
        demoted = agents[("pagetide_migrated_bytes_total", (("destination_tier", "pmem"), ("host", host),
                                                             ("mover", "controller"), ("source_tier", "dram")))]
        assert (promoted, demoted) == (h["promoted_bytes"], h["demoted_bytes"]) and promoted > 0
        for name, value in h["vmstat"].items():
            assert agents[(f"pagetide_vmstat_{name}_total", (("host", host),))] == value, name
        # the VMs' resident bytes on a tier add up to the tier's used bytes
        for tier, node in (("dram", "0"), ("pmem", "1")):
            vms = sum(agents[("pagetide_vm_resident_bytes", (("host", host), ("tier", tier), ("vm", v["vm"])))]
                      for v in h["vms"])
            assert vms == agents[("pagetide_node_used_bytes", (("host", host), ("node", node), ("tier", tier)))]
