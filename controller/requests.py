"""What a valid ControllerService request is: every field checked once, before anything changes, with
errors that name the field's path and the reason ("policy.max_dram_share: must be in [0, 1], got 1.5");
which VMs a selector means; and the opaque page tokens of the List RPCs. Pure -- no controller state: the
service looks hosts and VMs up and turns `Invalid` into INVALID_ARGUMENT and `NotFound` into NOT_FOUND.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pagetide.controller.policies import VmPolicy
from pagetide.v1 import controller_pb2

__all__ = ["Invalid", "NotFound", "vm_policy", "check_footprint", "Selector", "selector", "page_size",
           "paginate", "MAX_BYTES", "DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "MAX_REASON_BYTES", "TIERS"]

MAX_BYTES = (1 << 63) - 1            # the store keeps bytes in SQLite's signed 64-bit integers
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
MAX_REASON_BYTES = 1024
LABEL_NAME = re.compile(r"[A-Za-z0-9._/-]{1,63}")     # as agent scenarios accept them
MAX_LABEL_VALUE = 256
TIERS = {controller_pb2.TIER_UNSPECIFIED: None, controller_pb2.TIER_DRAM: "dram", controller_pb2.TIER_SLOW: "slow"}

T = TypeVar("T")


def shown(name: str, limit: int = 64) -> str:
    """A client's string as an error message echoes it: cut to `limit` characters, since a status message goes
    back in a header and one over the client's 8 KiB metadata limit turns the answer into RESOURCE_EXHAUSTED."""
    return repr(name if len(name) <= limit else name[:limit] + "...")


class Invalid(ValueError):
    """A request field that is not valid: INVALID_ARGUMENT, message "<field>: <reason>"."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class NotFound(LookupError):
    """A host or VM the controller does not know: NOT_FOUND."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


# ------------------------------------------------------------------------------------------- policies

def vm_policy(p: controller_pb2.VmPolicy, where: str = "policy") -> VmPolicy:
    """The policy a user set, checked field by field (not host_id and vm: the caller looks those up)."""
    weight = p.weight if p.weight != 0 else 1.0
    if not math.isfinite(weight) or weight <= 0:
        raise Invalid(f"{where}.weight", f"must be a finite number > 0 (0: the default, 1), got {p.weight}")
    for key in ("min_dram_bytes", "max_dram_bytes"):
        if getattr(p, key) > MAX_BYTES:
            raise Invalid(f"{where}.{key}", f"must be at most {MAX_BYTES}, got {getattr(p, key)}")
    shares = {}
    for key, other in (("min_dram_share", "min_dram_bytes"), ("max_dram_share", "max_dram_bytes")):
        if not p.HasField(key):
            shares[key] = None
            continue
        x = getattr(p, key)
        if not math.isfinite(x) or not 0 <= x <= 1:
            raise Invalid(f"{where}.{key}", f"must be in [0, 1], got {x}")
        if getattr(p, other):
            raise Invalid(f"{where}.{key}", f"give {other} or {key}, not both")
        shares[key] = float(x)
    lo_share, hi_share = shares["min_dram_share"], shares["max_dram_share"]
    if lo_share is not None and hi_share is not None and lo_share > hi_share:
        raise Invalid(f"{where}.min_dram_share", f"must not exceed max_dram_share ({hi_share}), got {lo_share}")
    if p.max_dram_bytes and p.min_dram_bytes > p.max_dram_bytes:
        raise Invalid(f"{where}.min_dram_bytes", f"must not exceed max_dram_bytes ({p.max_dram_bytes}), "
                                                 f"got {p.min_dram_bytes}")
    if p.pinned_tier not in TIERS:
        raise Invalid(f"{where}.pinned_tier", f"unknown tier {p.pinned_tier}")
    slowdown = None
    if p.HasField("max_slowdown"):
        slowdown = float(p.max_slowdown)
        if not (math.isfinite(slowdown) and slowdown >= 1):
            raise Invalid(f"{where}.max_slowdown", f"must be a finite ratio >= 1 (unset: the fleet-wide guard), "
                                                   f"got {p.max_slowdown}")
    return VmPolicy(min_dram_bytes=p.min_dram_bytes, max_dram_bytes=p.max_dram_bytes or None, weight=float(weight),
                    min_dram_share=lo_share, max_dram_share=hi_share, pinned_tier=TIERS[p.pinned_tier],
                    migrate=not p.migration_disabled, max_slowdown=slowdown)


def check_footprint(p: VmPolicy, footprint: int, vm: str, where: str = "policy") -> None:
    """A minimum and a maximum of which one is a share must still be in order for this VM's footprint."""
    if p.min_dram_share is None and p.max_dram_share is None:
        return
    lo = math.ceil(p.min_dram_share * footprint) if p.min_dram_share is not None else p.min_dram_bytes
    hi = int(p.max_dram_share * footprint) if p.max_dram_share is not None else p.max_dram_bytes
    if hi is not None and lo > hi:
        key = "min_dram_share" if p.min_dram_share is not None else "min_dram_bytes"
        raise Invalid(f"{where}.{key}", f"the minimum ({lo} bytes) exceeds the maximum ({hi} bytes) for VM "
                                        f"{vm!r} of {footprint} bytes")


# ------------------------------------------------------------------------------------------ selectors

@dataclass(frozen=True)
class Selector:
    """VMs matching every criterion given ("" / no labels: any)."""
    host_id: str = ""
    vm: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.host_id or self.vm or self.labels)

    def matches(self, host_id: str, vm: str, labels: Mapping[str, str] | None) -> bool:
        """labels None: not known (the host's topology was never read), so no label criterion matches."""
        if (self.host_id and host_id != self.host_id) or (self.vm and vm != self.vm):
            return False
        if not self.labels:
            return True
        return labels is not None and all(labels.get(k) == v for k, v in self.labels)

    def key(self) -> str:
        return json.dumps([self.host_id, self.vm, list(self.labels)])


def selector(s: controller_pb2.VmSelector, where: str = "selector") -> Selector:
    for name, value in s.labels.items():
        if not LABEL_NAME.fullmatch(name):
            raise Invalid(f"{where}.labels", f"label name must be 1-63 letters, digits, '.', '_', '-' or '/', "
                                             f"got {shown(name)}")
        if len(value) > MAX_LABEL_VALUE:
            raise Invalid(f"{where}.labels[{name}]", f"must be at most {MAX_LABEL_VALUE} characters, got {len(value)}")
    return Selector(s.host_id, s.vm, tuple(sorted(s.labels.items())))


# ---------------------------------------------------------------------------------------------- pages

def page_size(n: int, where: str = "page_size") -> int:
    """0: the default (100); above the maximum: the maximum (1000), as AIP-158 advises; negative: Invalid."""
    if n < 0:
        raise Invalid(where, f"must not be negative, got {n}")
    return DEFAULT_PAGE_SIZE if n == 0 else min(n, MAX_PAGE_SIZE)


def _fingerprint(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def _token(last: Sequence[str], query: str) -> str:
    raw = json.dumps({"q": _fingerprint(query), "after": list(last)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(token: str, query: str, where: str) -> tuple[str, ...] | None:
    if not token:
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = doc["after"]
        if doc["q"] != _fingerprint(query) or not all(isinstance(x, str) for x in after):
            raise ValueError
    except (ValueError, TypeError, KeyError):
        raise Invalid(where, "not a page token of this query (pass next_page_token unchanged, with the same "
                             "other fields)") from None
    return tuple(after)


def paginate(items: Sequence[T], key: Callable[[T], tuple[str, ...]], size: int, token: str, query: str,
             where: str = "page_token") -> tuple[list[T], str]:
    """One page of `items` (sorted by `key`) after the token's key, and the next page's token ("" at the
    end). Keyset pagination: items added or removed between pages shift nothing already read."""
    after = _after(token, query, where)
    start = 0
    if after is not None:
        start = next((i for i, x in enumerate(items) if key(x) > after), len(items))
    page = list(items[start:start + size])
    more = start + size < len(items)
    return page, (_token(key(page[-1]), query) if more and page else "")
