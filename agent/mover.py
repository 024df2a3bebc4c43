"""The mover: how a request of move_pages calls is checked and applied on a host.

Every request is validated here, once, as a whole and before anything moves -- unknown tenant (NOT_FOUND),
more than MAX_CALLS calls, addresses and nodes of different lengths, over MAX_MOVE_BYTES in one call,
unaligned addresses, unknown flags (INVALID_ARGUMENT) -- so a bad request changes nothing. A batch id seen
before answers with the first answer and moves nothing again (the controller retries requests). Per-page
problems are not request errors: they come back as move_pages(2)'s per-page negative errnos.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping

import numpy as np

from pagetide.agent.backend import BadRequest, MoveCall, MoveResult
from pagetide.agent.host import MOVE_PAGES_FLAGS
from pagetide.common.limits import MAX_CALLS, MAX_MOVE_BYTES

REMEMBERED_BATCHES = 1024      # answers kept for retried batch ids


def check_calls(calls: list[MoveCall], page_sizes: Mapping[str, int], host_id: str) -> None:
    """BadRequest for the first malformed call of a request. page_sizes: tenant name -> page size."""
    if len(calls) > MAX_CALLS:
        raise BadRequest(f"{len(calls)} calls in one request, at most {MAX_CALLS}")
    for i, c in enumerate(calls):
        where = f"call {i}: "
        if c.tenant not in page_sizes:
            raise BadRequest(f"{where}no tenant {c.tenant!r} on host {host_id}", not_found=True)
        page_size = page_sizes[c.tenant]
        if c.addresses.shape != c.nodes.shape:
            raise BadRequest(f"{where}{c.addresses.size} addresses but {c.nodes.size} target nodes")
        if c.addresses.size * page_size > MAX_MOVE_BYTES:
            raise BadRequest(f"{where}{c.addresses.size} pages of {page_size} bytes is over the "
                             f"{MAX_MOVE_BYTES >> 20} MiB limit per move_pages call")
        unaligned = c.addresses % np.uint64(page_size) != 0
        if unaligned.any():
            raise BadRequest(f"{where}address {int(c.addresses[np.argmax(unaligned)]):#x} is not aligned to the "
                             f"tenant's page size ({page_size} bytes)")
        if c.flags & ~MOVE_PAGES_FLAGS:
            raise BadRequest(f"{where}invalid flags {c.flags:#x}")


class BatchMover:
    """A mover over a per-call move_pages function (the host model's, or the real syscall's)."""
    name = "move_pages"

    def __init__(self, host_id: str, page_sizes: Mapping[str, int],
                 move_pages: Callable[[str, np.ndarray, np.ndarray, int], MoveResult]):
        self.host_id = host_id
        self.page_sizes = page_sizes
        self._move_pages = move_pages
        self._batches: OrderedDict[str, list[MoveResult]] = OrderedDict()
        self.requests = 0               # requests applied (a part of the host's state version)

    def move(self, calls: list[MoveCall], batch_id: str = "") -> list[MoveResult]:
        if batch_id and batch_id in self._batches:
            return self._batches[batch_id]
        check_calls(calls, self.page_sizes, self.host_id)
        try:
            results = [self._move_pages(c.tenant, c.addresses, c.nodes, c.flags) for c in calls]
        except ValueError as e:
            raise BadRequest(str(e)) from None
        finally:
            self.requests += 1
        if batch_id:
            self._batches[batch_id] = results
            while len(self._batches) > REMEMBERED_BATCHES:
                self._batches.popitem(last=False)
        return results
