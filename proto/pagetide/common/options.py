"""Declared options: how workloads, kernel tiering modes and placement policies name their tunables.

Each owner declares its options once, as a mapping of key -> `Option` (a parser in human units, a default and
a one-line meaning). `parse_options` turns a user's mapping (a scenario's YAML block, `--policy-option
KEY=VALUE` pairs) into values: every key must be declared, every value parses or the error names the dotted
key, and undeclared keys are listed with the valid ones. Nothing else parses options.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pagetide.common import units

__all__ = ["Option", "OptionError", "parse_options", "describe", "size", "duration", "ratio", "count", "integer",
           "number", "flag", "rate", "bandwidth", "ratio_per_second", "positive", "text"]


class OptionError(ValueError):
    """A value or key the owner does not accept; the message starts with the dotted key."""


@dataclass(frozen=True)
class Option:
    """One tunable: `parse(value, dotted_key) -> parsed` (raising ValueError), its default (used as is, not
    parsed; None: the owner decides), and what it means."""
    parse: Callable[[Any, str], Any]
    default: Any
    help: str


def parse_options(declared: Mapping[str, Option], given: Mapping[str, Any] | None, where: str,
                  owner: str = "", defaults: bool = True, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """Values of every declared option (defaults filled in unless `defaults` is False, then only the given
    ones), in declaration order. `ignore`: keys the caller handles itself (e.g. a workload's `type`)."""
    given = {} if given is None else given
    if not isinstance(given, Mapping):
        raise OptionError(f"{where}: must be a mapping of options, got {type(given).__name__}")
    for key in given:
        if not isinstance(key, str):
            raise OptionError(f"{where}: keys must be strings, got {key!r}")
        if key not in declared and key not in ignore:
            valid = ", ".join([*ignore, *declared]) or "none"
            raise OptionError(f"{where}.{key}: unknown key{' for ' + owner if owner else ''}; valid keys: {valid}")
    out = {}
    for key, opt in declared.items():
        if key in given and given[key] is not None:
            try:
                out[key] = opt.parse(given[key], f"{where}.{key}")
            except OptionError:
                raise
            except ValueError as e:
                msg = str(e)
                raise OptionError(msg if msg.startswith(f"{where}.{key}") else f"{where}.{key}: {msg}") from None
        elif defaults:
            out[key] = opt.default
    return out


def describe(declared: Mapping[str, Option]) -> str:
    """One line per option: `key (default): meaning`."""
    return "\n".join(f"{k} ({'-' if o.default is None else o.default}): {o.help}" for k, o in declared.items())


# ---- parsers, each (value, dotted key) -> value, built with their range ---------------------------------

def _ranged(parse_unit: Callable[..., Any], lo: float | None, hi: float | None,
            fmt: Callable[[float], str]) -> Callable[[Any, str], Any]:
    def parse(v: Any, key: str) -> Any:
        x = parse_unit(v, name=key)
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            lo_s = "-inf" if lo is None else fmt(lo)
            hi_s = "inf" if hi is None else fmt(hi)
            raise OptionError(f"{key}: must be within [{lo_s}, {hi_s}], got {v!r}")
        return x
    return parse


def size(lo: int | None = 0, hi: int | None = None) -> Callable[[Any, str], int]:
    return _ranged(units.parse_size, lo, hi, units.format_size)


def duration(lo: float | None = 0.0, hi: float | None = None) -> Callable[[Any, str], float]:
    return _ranged(units.parse_duration, lo, hi, units.format_duration)


def ratio(lo: float | None = 0.0, hi: float | None = 1.0) -> Callable[[Any, str], float]:
    return _ranged(lambda v, name: units.parse_ratio(v, name=name, max=float("inf")), lo, hi, units.format_ratio)


def count(lo: int | None = 0, hi: int | None = None) -> Callable[[Any, str], int]:
    return _ranged(units.parse_count, lo, hi, str)


def rate(lo: float | None = 0.0, hi: float | None = None) -> Callable[[Any, str], float]:
    return _ranged(units.parse_rate, lo, hi, units.format_rate)


def bandwidth(lo: float | None = 0.0, hi: float | None = None) -> Callable[[Any, str], float]:
    return _ranged(units.parse_bandwidth, lo, hi, units.format_bandwidth)


def number(lo: float | None = None, hi: float | None = None) -> Callable[[Any, str], float]:
    return _ranged(lambda v, name: units.parse_number(v, name=name), lo, hi, lambda x: f"{x:g}")


def integer(lo: int | None = None, hi: int | None = None) -> Callable[[Any, str], int]:
    """A plain integer (no unit suffix); booleans and fractions are refused."""
    def parse(v: Any, key: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            elif isinstance(v, str) and v.strip().lstrip("+-").isdigit():
                v = int(v)
            else:
                raise OptionError(f"{key}: must be an integer, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise OptionError(f"{key}: must be within [{'-inf' if lo is None else lo}, "
                              f"{'inf' if hi is None else hi}], got {v}")
        return int(v)
    return parse


def flag() -> Callable[[Any, str], bool]:
    """true/false (YAML booleans, or the words true/false/on/off/yes/no/1/0)."""
    words = {"true": True, "on": True, "yes": True, "1": True, "false": False, "off": False, "no": False, "0": False}

    def parse(v: Any, key: str) -> bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, (int, float)) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in words:
            return words[v.strip().lower()]
        raise OptionError(f"{key}: must be true or false, got {v!r}")
    return parse


def ratio_per_second(lo: float | None = 0.0, hi: float | None = 1.0) -> Callable[[Any, str], float]:
    """A fraction per second: '1%/s', '1%' or 0.01 (the '/s' is optional)."""
    def parse_unit(v: Any, name: str) -> float:
        if isinstance(v, str) and v.rstrip().endswith("/s"):
            v = v.rstrip()[:-2]
        return units.parse_ratio(v, name=name, max=float("inf"))
    return _ranged(parse_unit, lo, hi, lambda x: units.format_ratio(x) + "/s")


def positive(parse: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """`parse`, and the value must be above zero: `positive(rate())` for a rate that cannot be nil."""
    def check(v: Any, key: str) -> Any:
        x = parse(v, key)
        if not x > 0:
            raise OptionError(f"{key}: must be > 0, got {v!r}")
        return x
    return check


def text(what: str = "a non-empty string") -> Callable[[Any, str], str]:
    """A non-empty string, such as a name or a path (a path object is taken as its text); `what` names the
    expected value in the error."""
    def parse(v: Any, key: str) -> str:
        if isinstance(v, os.PathLike):
            v = str(v)
        if not isinstance(v, str) or not v:
            raise OptionError(f"{key}: expected {what}, got {v!r}")
        return v
    return parse
