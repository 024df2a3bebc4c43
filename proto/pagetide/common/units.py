"""Human units: the one place pagetide parses and prints sizes, durations, ratios, rates and bandwidths.

Scenario files, the CLI and reports all go through this module, so `16GiB`, `100ms`, `25%`, `50M/s` and
`13.9GB/s` mean the same thing everywhere. Parsers accept a number (int, float, numpy scalar) or a string of a
number with an optional unit; they raise `ValueError` whose message names the offending text and the accepted
forms, and reads well after a `"key: "` prefix (callers add the key, or pass `name=` to have it added).
Booleans are rejected wherever a number is expected, although Python treats them as ints.

Units are case-sensitive: `MB` is 10**6 bytes, `MiB` 2**20, `mb` is an error; `ms` is milliseconds, `m` is
rejected as ambiguous (use `min`).
"""

from __future__ import annotations

import math
import numbers
import re
from decimal import Decimal

import numpy as np

__all__ = [
    "parse_size", "parse_duration", "parse_ratio", "parse_rate", "parse_bandwidth", "parse_count",
    "parse_number", "format_size", "format_duration", "format_ratio", "format_rate", "format_bandwidth",
]

_SIZE_UNITS = {
    "": 1, "B": 1,
    "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}
_SIZE_FORMS = ("a number of bytes (4096) or a number with one of B, kB, KB, MB, GB, TB, KiB, MiB, GiB, TiB "
               "(e.g. '16GiB', '4KiB', '1.5GB')")

_DURATION_UNITS = {
    "": Decimal(1), "s": Decimal(1), "ns": Decimal("1e-9"), "us": Decimal("1e-6"), "µs": Decimal("1e-6"),
    "ms": Decimal("1e-3"), "min": Decimal(60), "h": Decimal(3600),
}
_DURATION_FORMS = ("a number of seconds (2.5) or a number with one of ns, us, ms, s, min, h "
                   "(e.g. '100ms', '5us', '1.5min')")

# SI prefixes for rates and counts; "K" is accepted too since a count of kilo-things has no other meaning.
_SI_UNITS = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_RATE_FORMS = ("a number per second (5e7) or a number with k, M, G or T and an optional '/s' "
               "(e.g. '50M/s', '100k/s')")
_COUNT_FORMS = "a whole number (16384) or a number with k, M, G or T (e.g. '64k', '1M')"
_BANDWIDTH_FORMS = ("a number of bytes per second (1e9) or a size with '/s' "
                    "(e.g. '13.9GB/s', '100MB/s', '2GiB/s')")
_RATIO_FORMS = "a fraction (0.25) or a percentage ('25%')"

# A decimal number (sign allowed so that "-4GiB" gets "must not be negative", not "invalid"), then the unit.
_QUANTITY = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*")


def _fail(name: str | None, reason: str) -> ValueError:
    return ValueError(f"{name}: {reason}" if name else reason)


def _split(v: object, kind: str, forms: str, name: str | None) -> tuple[Decimal, str]:
    """Split `v` into (exact decimal value, unit text); the unit is "" for plain numbers."""
    if isinstance(v, (bool, np.bool_)):
        raise _fail(name, f"expected a {kind}, got the boolean {v!r}; use {forms}")
    if isinstance(v, numbers.Real):
        x = float(v) if not isinstance(v, numbers.Integral) else None
        if x is not None and not math.isfinite(x):
            raise _fail(name, f"a {kind} must be finite, got {v!r}")
        return (Decimal(int(v)) if x is None else Decimal(repr(x))), ""
    if not isinstance(v, str):
        raise _fail(name, f"expected a {kind} as a number or a string, got {type(v).__name__} {v!r}; use {forms}")
    m = _QUANTITY.fullmatch(v)
    if m is None:
        raise _fail(name, f"invalid {kind} {v!r}: expected {forms}")
    return Decimal(m.group(1)), m.group(2)


def _finite(d: Decimal, v: object, kind: str, name: str | None) -> float:
    x = float(d)
    if not math.isfinite(x):
        raise _fail(name, f"{kind} {v!r} is out of range")
    return x


def _non_negative(d: Decimal, v: object, kind: str, name: str | None) -> None:
    if d < 0:
        raise _fail(name, f"a {kind} must not be negative, got {v!r}")


def _strip_per_second(unit: str) -> str:
    return unit[:-2].rstrip() if unit.endswith("/s") else unit


def parse_size(v: object, *, name: str | None = None) -> int:
    """Bytes from 4096, '4096', '100B', '4KiB', '16GiB', '512MB', '1.5GB' (binary and decimal units).

    A fractional result is rounded to the nearest byte ('1.3GiB'), except for a plain number of bytes,
    where a fraction is a mistake."""
    d, unit = _split(v, "size", _SIZE_FORMS, name)
    if unit not in _SIZE_UNITS:
        raise _fail(name, f"invalid size {v!r}: unknown unit {unit!r}; expected {_SIZE_FORMS}")
    _non_negative(d, v, "size", name)
    _finite(d, v, "size", name)
    total = d * _SIZE_UNITS[unit]
    if unit in ("", "B") and total != total.to_integral_value():
        raise _fail(name, f"a size in bytes must be a whole number, got {v!r}")
    return int(total.to_integral_value())


def parse_duration(v: object, *, name: str | None = None) -> float:
    """Seconds from 2, 2.5, '2s', '100ms', '5us', '250ns', '1.5min', '1h'; bare numbers are seconds."""
    d, unit = _split(v, "duration", _DURATION_FORMS, name)
    if unit not in _DURATION_UNITS:
        hint = " ('m' is ambiguous: use 'min' for minutes or 'ms' for milliseconds)" if unit == "m" else ""
        raise _fail(name, f"invalid duration {v!r}: unknown unit {unit!r}{hint}; expected {_DURATION_FORMS}")
    _non_negative(d, v, "duration", name)
    return _finite(d * _DURATION_UNITS[unit], v, "duration", name)


def parse_ratio(v: object, *, max: float = 1.0, name: str | None = None) -> float:  # noqa: A002
    """A fraction from 0.25, '0.25' or '25%', within [0, max] (max is 1 unless the caller allows more)."""
    d, unit = _split(v, "ratio", _RATIO_FORMS, name)
    if unit == "%":
        d = d / 100
    elif unit:
        raise _fail(name, f"invalid ratio {v!r}: unknown unit {unit!r}; expected {_RATIO_FORMS}")
    x = _finite(d, v, "ratio", name)
    if not 0.0 <= x <= max:
        got = f"{x:g} (from {v!r})" if unit == "%" else f"{v!r}"
        raise _fail(name, f"must be within [0, {max:g}], got {got}")
    return x


def parse_rate(v: object, *, name: str | None = None) -> float:
    """Events per second from 5e7, '5e7', '100k/s', '50M/s', '1.2G/s' (the '/s' is optional)."""
    d, unit = _split(v, "rate", _RATE_FORMS, name)
    prefix = _strip_per_second(unit)
    if prefix not in _SI_UNITS:
        raise _fail(name, f"invalid rate {v!r}: unknown unit {unit!r}; expected {_RATE_FORMS}")
    _non_negative(d, v, "rate", name)
    return _finite(d * _SI_UNITS[prefix], v, "rate", name)


def parse_bandwidth(v: object, *, name: str | None = None) -> float:
    """Bytes per second from 1e9, '13.9GB/s', '100MB/s', '2GiB/s' (size units of `parse_size`)."""
    d, unit = _split(v, "bandwidth", _BANDWIDTH_FORMS, name)
    size_unit = _strip_per_second(unit)
    if size_unit not in _SIZE_UNITS:
        raise _fail(name, f"invalid bandwidth {v!r}: unknown unit {unit!r}; expected {_BANDWIDTH_FORMS}")
    _non_negative(d, v, "bandwidth", name)
    return _finite(d * _SIZE_UNITS[size_unit], v, "bandwidth", name)


def parse_count(v: object, *, name: str | None = None) -> int:
    """A whole number from 16384, '16384', '64k', '1M', '1.5k'."""
    d, unit = _split(v, "count", _COUNT_FORMS, name)
    if unit not in _SI_UNITS:
        raise _fail(name, f"invalid count {v!r}: unknown unit {unit!r}; expected {_COUNT_FORMS}")
    _non_negative(d, v, "count", name)
    _finite(d, v, "count", name)
    total = d * _SI_UNITS[unit]
    if total != total.to_integral_value():
        raise _fail(name, f"a count must be a whole number, got {v!r}")
    return int(total)


def parse_number(v: object, *, min: float | None = None, max: float | None = None,  # noqa: A002
                 name: str | None = None) -> float:
    """A plain finite number (no unit) from 0.99 or '0.99', optionally within [min, max]."""
    forms = "a plain number (e.g. 0.99)"
    d, unit = _split(v, "number", forms, name)
    if unit:
        raise _fail(name, f"invalid number {v!r}: expected {forms}, without a unit")
    x = _finite(d, v, "number", name)
    if (min is not None and x < min) or (max is not None and x > max):
        lo = "-inf" if min is None else f"{min:g}"
        hi = "inf" if max is None else f"{max:g}"
        raise _fail(name, f"must be within [{lo}, {hi}], got {v!r}")
    return x


# ---- formatting, for reports -------------------------------------------------------------------------------

def _sig3(x: float) -> str:
    """Three significant digits, never in exponent notation."""
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _scaled(x: float, steps: tuple[tuple[float, str], ...]) -> tuple[str, str]:
    """(number, unit) with the largest unit that keeps the 3-significant-digit value >= 1."""
    rounded = abs(float(f"{x:.3g}"))
    factor, unit = steps[0]
    for f, u in steps:
        if rounded >= f:
            factor, unit = f, u
    return _sig3(x / factor), unit


def format_size(nbytes: float) -> str:
    """'512 B', '4.0 KiB', '1.5 GiB' (binary units, one decimal); parse_size reads it back."""
    sign = "-" if nbytes < 0 else ""
    n = abs(nbytes)
    if round(n) < 1024:
        return f"{sign}{round(n)} B"
    for i, unit in enumerate(("KiB", "MiB", "GiB", "TiB")):
        value = round(n / 1024 ** (i + 1), 1)
        if value < 1024 or unit == "TiB":
            return f"{sign}{value:.1f} {unit}"
    raise AssertionError("unreachable")


_DURATION_STEPS = ((1e-9, "ns"), (1e-6, "us"), (1e-3, "ms"), (1.0, "s"), (60.0, "min"), (3600.0, "h"))


def format_duration(seconds: float) -> str:
    """'250 ns', '120 ms', '2.5 s', '1.5 min', '2 h' (three significant digits)."""
    if seconds == 0:
        return "0 s"
    num, unit = _scaled(seconds, _DURATION_STEPS)
    return f"{num} {unit}"


def format_ratio(x: float) -> str:
    """'97.3%' (one decimal); tiny non-zero ratios keep two significant digits ('0.042%')."""
    pct = x * 100
    if pct != 0 and abs(pct) < 0.05:
        return f"{pct:.2g}%"
    return f"{pct:.1f}%"


def format_rate(per_second: float) -> str:
    """'500/s', '100 k/s', '50 M/s', '1.2 G/s' (SI prefixes, three significant digits)."""
    num, prefix = _scaled(per_second, ((1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T")))
    return f"{num} {prefix}/s" if prefix else f"{num}/s"


def format_bandwidth(bytes_per_second: float) -> str:
    """'13.9 GB/s', '100 MB/s' (decimal units, as device datasheets quote bandwidth)."""
    num, unit = _scaled(bytes_per_second,
                        ((1.0, "B"), (1e3, "kB"), (1e6, "MB"), (1e9, "GB"), (1e12, "TB")))
    return f"{num} {unit}/s"
