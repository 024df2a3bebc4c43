"""The controller's per-host loop (controller/controller.py `_loop`) with a reconcile call past its deadline: a
miss, but the call is awaited again, not abandoned or doubled, and its round is recorded when it ends. A fake
proxy, no Ray."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from pagetide.controller import controller as controller_mod
from pagetide.controller.controller import Controller
from pagetide.controller.hostclient import RoundResult


def test_a_late_reconcile_is_a_miss_then_its_round_counts_and_no_second_call_is_queued(monkeypatch):
    monkeypatch.setattr(controller_mod, "RPC_TIMEOUT", 0.02)      # deadline: wait 0 + 4 x 0.02 s
    calls = []

    async def reconcile(h, *args):
        calls.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.3 if len(calls) == 1 else 10.0)   # the first call ends late; later ones never
        return RoundResult(host_id=h, period=len(calls))

    async def main():
        ctl = Controller({"h0": "127.0.0.1:1"}, wait=0.0)
        ctl.hosts["h0"].status = "up"
        ctl.proxies = {"h0": SimpleNamespace(reconcile=SimpleNamespace(remote=reconcile))}
        task = asyncio.create_task(ctl._loop("h0"))
        try:
            assert await ctl.wait_reconciled({"h0": 1}, timeout=2.0, down_too=True)
            await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return ctl.hosts["h0"]
    state = asyncio.run(main())
    assert state.last_period == 1 and state.rounds == 1
    assert state.last_error == "deadline exceeded" and state.misses == 0     # missed, then answered
    assert len(calls) == 2          # the late call awaited to its end, then the next period's call
