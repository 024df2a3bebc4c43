"""`pagetide controller`: the control loop against running agents, on a local Ray or an existing cluster.

Agents are given by address (`--agent`, repeatable) or in a YAML file (`--agents`): a list of addresses, or
of `{address: ..., hosts: [...]}` entries naming the hosts to manage there (otherwise every host the agent
lists). The controller reconciles every host on its own, serves ControllerService (`--listen`) and,
with `--metrics-port`, Prometheus metrics; it stops at SIGINT/SIGTERM or after `--duration`, and prints a
summary per host.
"""

from __future__ import annotations

import argparse
import sys

from pagetide.common.security import add_client_security_arguments, add_server_security_arguments


def parse_policy_option(text: str) -> tuple[str, str]:
    """KEY=VALUE; the policy parses VALUE in its option's units (e.g. reserve=0.5%, hysteresis_bins=3)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    return key.strip(), value.strip()


def size_argument(text: str) -> int:
    from pagetide.common import units

    try:
        return units.parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def duration_argument(text: str) -> float:
    from pagetide.common import units

    try:
        return units.parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_policy_arguments(p: argparse.ArgumentParser) -> None:
    """The placement options `pagetide controller` and `pagetide sim` share."""
    from pagetide.controller.policies import POLICIES

    p.add_argument("--policy", choices=sorted(POLICIES), default="pagetide",
                   help="placement policy: pagetide's own or a baseline daemon (default pagetide)")
    p.add_argument("--policy-option", type=parse_policy_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the chosen policy, e.g. hysteresis_bins=3 or dram_percent=25 (repeatable)")
    p.add_argument("--bandwidth", type=size_argument, default=256 << 20,
                   help="per-host migration limit in bytes per second (default 256MiB)")
    p.add_argument("--max-candidates", type=int, default=4096, help="candidate pages per list in heat reports")


def set_argparser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", action="append", default=[], metavar="ADDR",
                   help="an agent's address host:port (repeatable); its hosts are discovered with ListHosts")
    p.add_argument("--agents", metavar="FILE", help="YAML file listing agents (addresses, or {address, hosts})")
    p.add_argument("--listen", default="127.0.0.1:0",
                   help="ControllerService address (default: a free loopback port); off loopback it needs "
                        "--token-file or mutual TLS, or --insecure")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on --metrics-address:PORT")
    p.add_argument("--metrics-address", default="127.0.0.1",
                   help="address of the metrics endpoint (default 127.0.0.1; 0.0.0.0 for a Prometheus elsewhere)")
    p.add_argument("--no-vm-metrics", action="store_true",
                   help="leave out per-VM series (fleets of thousands of hosts)")
    p.add_argument("--ray-address", help="join this Ray cluster (e.g. auto, or HOST:6379) instead of a local Ray")
    p.add_argument("--duration", type=duration_argument, help="stop after this long (default: until SIGTERM)")
    p.add_argument("--down-after", type=int, default=3, help="missed deadlines before a host is marked down")
    p.add_argument("--json", help="write the per-host summary as JSON when stopping")
    p.add_argument("--db", help="the policy store: VM policies and pauses survive restarts here (default "
                                "$XDG_STATE_HOME/pagetide/controller.db, i.e. ~/.local/state/pagetide/controller.db)")
    add_policy_arguments(p)
    add_server_security_arguments(p, what="ControllerService")
    add_client_security_arguments(p, prefix="agent-", what="the agents")


def load_agents(path: str) -> tuple[list[str], dict[str, str]]:
    """(addresses to discover, host id -> address given explicitly) from an agents YAML file; ValueError naming
    the entry for a malformed one."""
    import yaml

    with open(path) as f:
        doc = yaml.safe_load(f)
    entries = doc.get("agents") if isinstance(doc, dict) else doc
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a list of agents (or a mapping with key 'agents')")
    discover, explicit = [], {}
    for i, e in enumerate(entries):
        if isinstance(e, str):
            discover.append(e)
            continue
        if not isinstance(e, dict) or not isinstance(e.get("address"), str) or set(e) - {"address", "hosts"}:
            raise ValueError(f"{path}: agents[{i}]: expected an address or {{address: ..., hosts: [...]}}")
        hosts = e.get("hosts")
        if hosts is None:
            discover.append(e["address"])
        elif isinstance(hosts, list) and all(isinstance(h, str) for h in hosts):
            for h in hosts:
                if h in explicit:
                    raise ValueError(f"{path}: agents[{i}].hosts: host {h!r} listed twice")
                explicit[h] = e["address"]
        else:
            raise ValueError(f"{path}: agents[{i}].hosts: expected a list of host ids")
    return discover, explicit


def summary(ctl) -> tuple[str, dict]:
    from pagetide.common.tables import fmt_bytes, table

    rows, out = [], {}
    for h, s in sorted(ctl.hosts.items()):
        rows.append([h, s.address, s.status, str(s.rounds), str(s.last_period), str(s.outages),
                     fmt_bytes(s.promoted_bytes), fmt_bytes(s.demoted_bytes), s.last_error if not s.up else ""])
        out[h] = {"address": s.address, "status": s.status, "rounds": s.rounds, "last_period": s.last_period,
                  "outages": s.outages, "promoted_bytes": s.promoted_bytes, "demoted_bytes": s.demoted_bytes,
                  "last_error": s.last_error}
    text = table(["host", "agent", "status", "rounds", "period", "outages", "promoted", "demoted", "last error"],
                 rows, left=3)
    return text, out


def main(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import os
    import signal

    from prometheus_client import start_http_server

    from pagetide.common.security import SecurityError, bound_address, client_security, listen_error, server_security

    try:
        to_discover, explicit = load_agents(args.agents) if args.agents else ([], {})
        security, agent_security = server_security(args), client_security(args, "agent-")
    except (OSError, ValueError) as e:      # SecurityError is a ValueError
        print(f"pagetide controller: {e}", file=sys.stderr)
        return 2
    to_discover += args.agent
    if not to_discover and not explicit:
        print("pagetide controller: no agents given (--agent ADDR or --agents FILE)", file=sys.stderr)
        return 2
    refused = listen_error(args.listen, security)
    if refused:
        print(f"pagetide controller: {refused}", file=sys.stderr)
        return 2
    from pagetide.controller.store import PolicyStore, StoreError, default_path

    try:
        store = PolicyStore(args.db or default_path())
    except StoreError as e:
        print(f"pagetide controller: {e}", file=sys.stderr)
        return 2
    # SIGTERM/SIGINT at any time -- also while Ray starts or agents are discovered -- ends the run the same
    # way: stop the loops, print the summary, shut Ray down, status 0. Ray would otherwise take SIGTERM
    # over: the C++ core's failure signal handler aborts (status 134), so it is turned off; and ray.init
    # installs a handler raising SystemExit wherever its start-up is (status 15, or a crash later with its
    # processes left running), so while it runs, setting a SIGTERM/SIGINT handler keeps ours (ray.init must
    # run in the main thread: from another one it never reaches its GCS).
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    signalled: list[int] = []

    def catch_signals() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: signalled.append(signum))
    catch_signals()

    from pagetide.controller.cluster import init_ray
    from pagetide.controller.controller import Controller, discover
    from pagetide.controller.service import start_controller_server

    class Stopped(Exception):
        pass

    async def run() -> dict:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if signalled:
            stop.set()

        async def unless_stopped(aw):
            """`aw`'s result, or Stopped (aw cancelled) if a signal comes first."""
            task, stopped = asyncio.ensure_future(aw), asyncio.ensure_future(stop.wait())
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise Stopped
            return task.result()

        ctl = server = None
        try:
            hosts = dict(explicit)
            if to_discover:
                hosts.update(await unless_stopped(discover(to_discover, security=agent_security)))
            from pagetide.controller.metrics import Metrics

            ctl = Controller(hosts, max_candidates=args.max_candidates, bandwidth=args.bandwidth, pace=True,
                             metrics=Metrics(per_vm=not args.no_vm_metrics),
                             policy=args.policy, policy_options=dict(args.policy_option),
                             down_after=args.down_after, store=store, agent_security=agent_security)
            await unless_stopped(ctl.start())
            server, port = await start_controller_server(ctl, args.listen, security=security)
            print(f"pagetide controller: {len(hosts)} hosts ({', '.join(sorted(hosts))}); ControllerService on "
                  f"{bound_address(args.listen, port)} ({security.describe()})", flush=True)
            if args.metrics_port is not None:
                start_http_server(args.metrics_port, addr=args.metrics_address, registry=ctl.metrics.registry)
                print(f"pagetide controller: metrics on http://{args.metrics_address}:{args.metrics_port}/metrics",
                      flush=True)
            try:
                await asyncio.wait_for(stop.wait(), args.duration)
            except asyncio.TimeoutError:
                pass
        except Stopped:
            print("pagetide controller: stopped by a signal while starting", file=sys.stderr, flush=True)
        finally:
            if ctl is not None:
                await ctl.stop()
            if server is not None:
                await server.stop(grace=0.5)
        if ctl is None:
            return {}
        text, out = summary(ctl)
        ctl.shutdown()
        print(text, flush=True)
        return out

    def start_ray() -> None:
        set_handler = signal.signal

        def keep_ours(sig, handler):
            if sig in (signal.SIGINT, signal.SIGTERM):
                return signal.getsignal(sig)
            return set_handler(sig, handler)
        signal.signal = keep_ours
        try:
            init_ray(args.ray_address)
        finally:
            signal.signal = set_handler

    try:
        if not signalled:
            start_ray()
        out = asyncio.run(run())
    except (TimeoutError, OSError, ValueError) as e:     # OSError: the listen address cannot be bound
        print(f"pagetide controller: {e}", file=sys.stderr)
        return 2
    finally:
        import ray

        catch_signals()                  # asyncio.run left SIGTERM at its default: a second one ends no cleanup
        ray.shutdown()
        store.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0
