"""pagetide's idle swaps, per VM: which DRAM pages are idle for good (`IdleAge`) and when a VM's idle swaps
are thrashing (`ThrashGuard`), from the addresses seen and moved in the last rounds.

An idle swap (`pagetide.plan_host(idle_swaps=...)`) trades one of a VM's idle DRAM pages (heat exactly 0) for
one of its warm slow pages without the hysteresis gap. It pays where heat 0 means idle for good (an idle VM's
boot-time memory, against its active set's tail) and loses where heat 0 is only an unlucky sample of a small
rate (a Zipf tail, a drifting ranking: the page swapped out is as hot as the one swapped in) or where the
pages come straight back (a scan loop). Two address histories decide, each bounded and per VM:

`IdleAge` watches the idle pages the heat report lists (the cold_fast list's heat-0 pages, lowest addresses
first). A listed page that drops out of the list while higher addresses stay listed, and that the policy did
not demote, woke up. A VM whose listed idle pages wake at most `max_wake` per round, over a full `window` of
rounds, has idle pages that stay idle; its pages listed idle for `rounds` rounds may be swapped. Measured on
the suite's hosts (pagetide bench's 30 s grid, DRAM 1/2): idle-vm 0.02-0.04 of its listed pages wake per
round, drift 0.09-0.12, zipf 0.13-0.15, so idle swaps run on the idle VM only.

`ThrashGuard` is the safety net behind it, for VMs whose idle pages pass but whose idle swaps still thrash:
1. History. Each round it remembers the addresses its idle swaps promoted and demoted, per VM, for `horizon`
   rounds: at most max_pages / (2 horizon) of each per round, an even sample of them where a round moved more
   (so the rate below is over what was remembered, and a VM holds at most `max_pages` addresses).
2. Reversals. A remembered promoted page that a later round's plan demotes, or a remembered demoted page that
   it promotes, by whichever rule, is a reversal: counted once and forgotten.
3. Throttle. Over the last `horizon` rounds, reversed / remembered at or above `max_reversal` (with at least
   `min_pages` remembered) throttles the VM -- no idle swaps, only the hysteresis -- until `hold` rounds have
   passed without the rate reaching the limit again: a quiet while releases it.

Both decide level-triggered (the last rounds' counts, not an event), and their state is soft and bounded
(IdleAge: one entry per listed page; the guard: at most `max_pages` addresses, 8 bytes each, per VM). A
restarted controller starts with empty histories: no idle swaps until a VM's idle pages have been watched for
a window, then idle swaps until they are seen reversing -- exactly as for a VM that just arrived. A VM that
leaves the host is forgotten. Pure: numpy only, no I/O, no clock; each counts rounds by its calls.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ThrashGuard", "IdleAge", "Moved", "member"]

Moved = tuple[np.ndarray, np.ndarray]      # (addresses promoted, addresses demoted), uint64


@dataclass
class _Round:
    round: int
    promoted: np.ndarray          # sorted uint64: remembered pages an idle swap promoted, not yet moved back
    demoted: np.ndarray           # sorted uint64: ... that an idle swap demoted
    remembered: int               # pages remembered that round
    reversed: int = 0             # of them, moved back since


@dataclass
class _VmHistory:
    rounds: deque = field(default_factory=deque)      # _Round, oldest first
    hold_until: int = 0                               # throttled while the round number is below this

    def totals(self) -> tuple[int, int]:
        """(remembered, reversed) over the rounds kept."""
        return sum(r.remembered for r in self.rounds), sum(r.reversed for r in self.rounds)


def member(x: np.ndarray, of: np.ndarray) -> np.ndarray:
    """x in `of`, elementwise (np.isin without its hashing of both arrays: `of` is sorted once)."""
    s = np.sort(np.asarray(of))
    if not s.size:
        return np.zeros(np.shape(x), dtype=bool)
    i = np.minimum(np.searchsorted(s, x), s.size - 1)
    return s[i] == x


class ThrashGuard:
    """The guard of one host (one tier boundary): ask `throttled` while planning a round, then `end_round`
    with the round's moves. Every bound is a constructor argument, so tests can make it small."""

    def __init__(self, horizon: int = 8, max_pages: int = 16384, max_reversal: float = 0.25,
                 min_pages: int = 32, hold: int = 8) -> None:
        if horizon < 1 or max_pages < 2 or hold < 0 or min_pages < 1 or not 0 < max_reversal <= 1:
            raise ValueError("ThrashGuard: horizon and min_pages must be >= 1, max_pages >= 2, hold >= 0, "
                             "max_reversal in (0, 1]")
        self.horizon, self.max_pages, self.max_reversal = horizon, max_pages, max_reversal
        self.min_pages, self.hold = min_pages, hold
        self.per_round = max(1, max_pages // (2 * horizon))     # addresses remembered per round and direction
        self.round = 0                        # rounds ended
        self.vms: dict[str, _VmHistory] = {}

    def throttled(self, name: str) -> bool:
        """Whether VM `name` may make no idle swaps this round (its idle swaps keep being moved back)."""
        h = self.vms.get(name)
        return h is not None and self.round < h.hold_until

    def reversal_rate(self, name: str) -> float:
        """Reversed / remembered over the last `horizon` rounds (0 without history)."""
        h = self.vms.get(name)
        remembered, reversed_pages = h.totals() if h else (0, 0)
        return reversed_pages / remembered if remembered else 0.0

    def end_round(self, moved: dict[str, Moved], idle_moved: dict[str, Moved]) -> dict[str, int]:
        """The round's plan is made: per VM on the host, every page it promotes and demotes (`moved`; a VM
        absent from it is forgotten unless it has idle swaps) and those of its idle swaps (`idle_moved`).
        Counts the reversals, remembers the idle swaps, ages the history and updates each VM's throttle for
        the next round. Returns the pages reversed per VM."""
        self.round += 1
        for name in [n for n in self.vms if n not in moved and n not in idle_moved]:
            del self.vms[name]
        out = {}
        for name in set(moved) | set(idle_moved):
            h = self.vms.setdefault(name, _VmHistory())
            promoted, demoted = (np.asarray(a, dtype=np.uint64) for a in moved.get(name, ((), ())))
            n = 0
            for r in h.rounds:
                back_p = member(r.promoted, demoted)     # promoted by an idle swap, now demoted
                back_d = member(r.demoted, promoted)
                k = int(back_p.sum() + back_d.sum())
                if k:
                    r.reversed += k
                    r.promoted, r.demoted = r.promoted[~back_p], r.demoted[~back_d]
                    n += k
            out[name] = n
            ip, id_ = (np.unique(np.asarray(a, dtype=np.uint64)) for a in idle_moved.get(name, ((), ())))
            ip, id_ = (a[::-(-a.size // self.per_round)] if a.size > self.per_round else a for a in (ip, id_))
            if ip.size or id_.size:
                h.rounds.append(_Round(self.round, ip, id_, int(ip.size + id_.size)))
            while h.rounds and h.rounds[0].round <= self.round - self.horizon:
                h.rounds.popleft()
            remembered, reversed_pages = h.totals()
            if remembered >= self.min_pages and reversed_pages >= self.max_reversal * remembered:
                h.hold_until = self.round + self.hold + 1
        return out


class IdleAge:
    """Per VM, since which round each of its listed idle DRAM pages (heat exactly 0 in the cold_fast list) has
    been seen idle in every round, and how often listed idle pages wake up: a page must stay idle `rounds`
    rounds before an idle swap may take it, and a VM's idle swaps need its idle pages to stay idle -- at most
    `max_wake` of the listed ones woken per round over the last `window` rounds (`wake_rate`). Pages idle
    for good (boot-time memory) pass; a Zipf tail or a drifting ranking, whose heat-0 pages are only
    unlucky samples of a small rate, does not. A listed page that left the list while pages above it stayed
    listed (the list is the lowest addresses at heat 0) and that the policy did not demote woke up (or was
    moved by the kernel: counted as woken, the safe side).
    Bounded by the lists it is given (one entry per listed page); soft state, like the guard's."""

    def __init__(self, rounds: int = 2, window: int = 4, max_wake: float = 0.06) -> None:
        if rounds < 0 or window < 1 or not 0 <= max_wake <= 1:
            raise ValueError("IdleAge: rounds must be >= 0, window >= 1, max_wake in [0, 1]")
        self.rounds, self.window, self.max_wake = rounds, window, max_wake
        self.round = 0
        self.since: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # VM -> (sorted addresses, first round idle)
        self.wakes: dict[str, deque] = {}                          # VM -> (listed, woken) per round
        self.demoted: dict[str, np.ndarray] = {}                   # VM -> sorted addresses demoted last round

    def wake_rate(self, name: str) -> float:
        """Woken / listed idle pages per round over the last `window` rounds; 1.0 until `window` rounds have
        been compared (a VM's idle pages are watched that long before they are trusted)."""
        w = self.wakes.get(name)
        listed = sum(n for n, _ in w) if w and len(w) == self.window else 0
        return sum(k for _, k in w) / listed if listed else 1.0

    def update(self, idle: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A new round: per VM on the host, the addresses of its listed DRAM pages at heat 0. Returns, per VM
        whose wake rate is at most `max_wake`, those idle for at least `rounds` rounds (sorted); VMs absent
        are forgotten."""
        self.round += 1
        out = {}
        for name in [n for n in self.since if n not in idle]:
            del self.since[name]
            self.wakes.pop(name, None)
        for name, addr in idle.items():
            a = np.unique(np.asarray(addr, dtype=np.uint64))
            old_a, old_r = self.since.get(name, (np.zeros(0, np.uint64), np.zeros(0, np.int64)))
            first = np.full(a.size, self.round, dtype=np.int64)
            stayed = member(old_a, a)
            if stayed.any():
                first[np.searchsorted(a, old_a[stayed])] = old_r[stayed]
            # pages above the list's last address may have left it for lower ones: only those below count
            covered = old_a <= a[-1] if a.size else np.ones(old_a.size, dtype=bool)
            woke = covered & ~stayed & ~member(old_a, self.demoted.get(name, old_a[:0]))
            w = self.wakes.setdefault(name, deque(maxlen=self.window))
            if old_a.size:
                w.append((int(covered.sum()), int(woke.sum())))
            self.since[name] = (a, first)
            if self.wake_rate(name) <= self.max_wake:
                out[name] = a[first <= self.round - self.rounds]
        self.demoted = {}
        return out

    def note_demoted(self, demoted: dict[str, np.ndarray]) -> None:
        """The pages this round's plan demotes, per VM: gone from the next list, but not woken."""
        self.demoted = {n: np.asarray(a, dtype=np.uint64) for n, a in demoted.items()}
