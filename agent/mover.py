"""The mover: how a request of move_pages calls is checked and applied on a host.

Every request is validated here, once, as a whole and before anything moves -- unknown tenant (NOT_FOUND),
more than MAX_CALLS calls, addresses and nodes (and expected nodes) of different lengths, over MAX_MOVE_BYTES
in one call, unaligned addresses, unknown flags, a batch id reused for other calls (INVALID_ARGUMENT) -- so a
bad request changes nothing. A batch id seen before, with the same calls, answers with the first answer and
moves nothing again (the controller retries requests); the last REMEMBERED_BATCHES ids are kept, in memory.
Past that window, and across an agent restart, expected nodes keep a late or repeated batch harmless: a page
no longer on the node the plan saw it on stays put and reports -EBUSY, so no page is moved twice by one
decision. Per-page problems are not request errors: they come back as move_pages(2)'s per-page negative
errnos.
"""

from __future__ import annotations

import errno
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping

import numpy as np

from pagetide.agent.backend import BadRequest, MoveCall, MoveResult
from pagetide.agent.mempolicy import MOVE_PAGES_FLAGS
from pagetide.common.limits import MAX_CALLS, MAX_MOVE_BYTES

REMEMBERED_BATCHES = 1024      # answers kept for retried batch ids

# move_pages(tenant, addresses, nodes or None, flags): with None, the nodes the pages are on (no move)
MovePagesFn = Callable[[str, np.ndarray, "np.ndarray | None", int], MoveResult]


def shown(name: str, limit: int = 64) -> str:
    """A client's string as an error echoes it, cut to `limit` characters (a status message over the client's
    8 KiB metadata limit would turn the answer into RESOURCE_EXHAUSTED)."""
    return repr(name if len(name) <= limit else name[:limit] + "...")


def check_calls(calls: list[MoveCall], page_sizes: Mapping[str, int], host_id: str) -> None:
    """BadRequest for the first malformed call of a request. page_sizes: tenant name -> page size."""
    if len(calls) > MAX_CALLS:
        raise BadRequest(f"{len(calls)} calls in one request, at most {MAX_CALLS}")
    for i, c in enumerate(calls):
        where = f"call {i}: "
        if c.tenant not in page_sizes:
            raise BadRequest(f"{where}no tenant {shown(c.tenant)} on host {host_id}", not_found=True)
        page_size = page_sizes[c.tenant]
        if c.addresses.shape != c.nodes.shape:
            raise BadRequest(f"{where}{c.addresses.size} addresses but {c.nodes.size} target nodes")
        if c.expected is not None and c.expected.shape != c.addresses.shape:
            raise BadRequest(f"{where}{c.addresses.size} addresses but {c.expected.size} expected nodes")
        if c.addresses.size * page_size > MAX_MOVE_BYTES:
            raise BadRequest(f"{where}{c.addresses.size} pages of {page_size} bytes is over the "
                             f"{MAX_MOVE_BYTES >> 20} MiB limit per move_pages call")
        unaligned = c.addresses % np.uint64(page_size) != 0
        if unaligned.any():
            raise BadRequest(f"{where}address {int(c.addresses[np.argmax(unaligned)]):#x} is not aligned to the "
                             f"tenant's page size ({page_size} bytes)")
        if c.flags & ~MOVE_PAGES_FLAGS:
            raise BadRequest(f"{where}invalid flags {c.flags:#x}")


def digest(calls: list[MoveCall]) -> bytes:
    """A fingerprint of a request's calls (what a reused batch id is compared by)."""
    h = hashlib.blake2b(digest_size=16)
    for c in calls:
        h.update(c.tenant.encode() + b"\0" + c.flags.to_bytes(4, "little"))
        h.update(c.addresses.astype("<u8").tobytes())
        h.update(c.nodes.astype("<i8").tobytes())
        h.update(b"-" if c.expected is None else b"+" + c.expected.astype("<i8").tobytes())
    return h.digest()


class BatchMover:
    """A mover over a per-call move_pages function (the host model's, or the real syscall's)."""
    name = "move_pages"

    def __init__(self, host_id: str, page_sizes: Mapping[str, int], move_pages: MovePagesFn):
        self.host_id = host_id
        self.page_sizes = page_sizes
        self._move_pages = move_pages
        self._batches: OrderedDict[str, tuple[bytes, list[MoveResult]]] = OrderedDict()
        self.requests = 0               # requests applied (a part of the host's state version)

    def move(self, calls: list[MoveCall], batch_id: str = "") -> list[MoveResult]:
        check_calls(calls, self.page_sizes, self.host_id)
        key = digest(calls) if batch_id else b""
        if batch_id in self._batches:
            first_key, results = self._batches[batch_id]
            if first_key != key:
                raise BadRequest(f"batch id {shown(batch_id)} was used before for different calls")
            return results
        try:
            results = [self._call(c) for c in calls]
        except ValueError as e:
            raise BadRequest(str(e)) from None
        finally:
            self.requests += 1
        if batch_id:
            self._batches[batch_id] = (key, results)
            while len(self._batches) > REMEMBERED_BATCHES:
                self._batches.popitem(last=False)
        return results

    def _call(self, c: MoveCall) -> MoveResult:
        if c.expected is None:
            return self._move_pages(c.tenant, c.addresses, c.nodes, c.flags)
        where = np.asarray(self._move_pages(c.tenant, c.addresses, None, c.flags).status)
        stale = (where >= 0) & (where != c.expected)
        if not stale.any():
            return self._move_pages(c.tenant, c.addresses, c.nodes, c.flags)
        keep = np.flatnonzero(~stale)
        res = self._move_pages(c.tenant, c.addresses[keep], c.nodes[keep], c.flags)
        status = np.full(c.addresses.size, -errno.EBUSY, dtype=np.asarray(res.status).dtype)
        status[keep] = res.status
        res.status = status
        return res
