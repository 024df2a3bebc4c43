"""Human units: every accepted form, round trips through the formatters, and clear errors."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pagetide.common.units import (format_bandwidth, format_duration, format_rate, format_ratio, format_size,
                                  parse_bandwidth, parse_count, parse_duration, parse_number, parse_ratio,
                                  parse_rate, parse_size)


# ---- sizes ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("16GiB", 16 * 2**30), ("4KiB", 4096), ("2MiB", 2 * 2**20), ("1TiB", 2**40),
    ("512MB", 512 * 10**6), ("1.5GB", 1_500_000_000), ("1kB", 1000), ("1KB", 1000), ("2TB", 2 * 10**12),
    ("100", 100), ("100B", 100), (" 4 KiB ", 4096), ("4.0 GiB", 4 * 2**30), ("0", 0),
])
def test_sizes_parse_binary_and_decimal_units_to_bytes(text, expected):
    assert parse_size(text) == expected
    assert isinstance(parse_size(text), int)


def test_integer_sizes_pass_through_including_numpy_and_whole_floats():
    assert parse_size(4096) == 4096
    assert parse_size(np.int64(2**21)) == 2**21
    assert parse_size(8192.0) == 8192


def test_fractional_sizes_with_a_unit_round_to_the_nearest_byte_but_fractional_bytes_are_rejected():
    assert parse_size("1.3GiB") == round(1.3 * 2**30)
    assert parse_size("0.1GB") == 100_000_000  # exact decimal arithmetic, no float noise
    with pytest.raises(ValueError, match="whole number"):
        parse_size("100.5")
    with pytest.raises(ValueError, match="whole number"):
        parse_size(4096.5)


@pytest.mark.parametrize("bad, fragment", [
    ("-4GiB", "must not be negative"),
    (-1, "must not be negative"),
    ("12XB", "unknown unit 'XB'"),
    ("16gib", "unknown unit 'gib'"),   # units are case-sensitive
    ("4mb", "unknown unit 'mb'"),
    ("abc", "invalid size 'abc'"),
    ("", "invalid size ''"),
    ("inf", "invalid size 'inf'"),
    (float("nan"), "must be finite"),
    (float("inf"), "must be finite"),
    ("1e400GB", "out of range"),
])
def test_bad_sizes_are_rejected_naming_the_offending_text(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_size(bad)


def test_size_errors_list_the_accepted_forms():
    with pytest.raises(ValueError) as e:
        parse_size("12XB")
    assert "'12XB'" in str(e.value)
    for unit in ("KiB", "MiB", "GiB", "TiB", "kB", "MB", "GB", "TB"):
        assert unit in str(e.value)


@pytest.mark.parametrize("parser", [parse_size, parse_duration, parse_ratio, parse_rate, parse_bandwidth,
                                    parse_count, parse_number])
@pytest.mark.parametrize("flag", [True, False, np.True_])
def test_booleans_are_rejected_where_a_number_is_expected(parser, flag):
    with pytest.raises(ValueError, match="boolean"):
        parser(flag)


@pytest.mark.parametrize("parser", [parse_size, parse_duration, parse_ratio, parse_rate, parse_count])
def test_non_numbers_are_rejected_by_type(parser):
    with pytest.raises(ValueError, match="list"):
        parser([4096])
    with pytest.raises(ValueError, match="NoneType"):
        parser(None)


def test_name_prefixes_the_message_with_the_key():
    with pytest.raises(ValueError, match=r"^host\.nodes\[0\]\.capacity: invalid size '12XB'"):
        parse_size("12XB", name="host.nodes[0].capacity")


# ---- durations -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("100ms", 0.1), ("5us", 5e-6), ("5µs", 5e-6), ("250ns", 250e-9), ("2s", 2.0), ("1.5min", 90.0),
    ("1h", 3600.0), ("2", 2.0), (2, 2.0), (0.25, 0.25), ("120 ms", 0.12), ("1e-3s", 0.001),
])
def test_durations_parse_to_seconds_and_bare_numbers_are_seconds(text, expected):
    assert parse_duration(text) == pytest.approx(expected, rel=1e-12)


def test_m_is_rejected_as_ambiguous_between_minutes_and_milliseconds():
    with pytest.raises(ValueError, match="'m' is ambiguous.*'min'.*'ms'"):
        parse_duration("5m")


@pytest.mark.parametrize("bad, fragment", [("-1s", "must not be negative"), ("10 parsecs", "unknown unit"),
                                           ("fast", "invalid duration 'fast'"), (math.inf, "finite")])
def test_bad_durations_are_rejected(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_duration(bad)


# ---- ratios --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["25%", 0.25, "0.25", " 25 % ", np.float64(0.25)])
def test_ratios_parse_percentages_and_fractions(value):
    assert parse_ratio(value) == 0.25


def test_ratios_accept_both_ends_of_the_range():
    assert parse_ratio("0%") == 0.0
    assert parse_ratio("100%") == 1.0
    assert parse_ratio(1) == 1.0


def test_a_ratio_above_one_is_rejected_with_the_range_and_the_value():
    with pytest.raises(ValueError, match=r"must be within \[0, 1\], got 1\.5 \(from '150%'\)"):
        parse_ratio("150%")
    with pytest.raises(ValueError, match=r"must be within \[0, 1\], got 1\.5$"):
        parse_ratio(1.5)
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        parse_ratio("-5%")


def test_a_caller_may_allow_ratios_above_one():
    assert parse_ratio("150%", max=2) == 1.5
    with pytest.raises(ValueError, match=r"within \[0, 2\]"):
        parse_ratio("250%", max=2)


def test_ratio_units_other_than_percent_are_rejected():
    with pytest.raises(ValueError, match="unknown unit 'GB'"):
        parse_ratio("25GB")


# ---- rates, bandwidths, counts, plain numbers ----------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("50M/s", 50e6), ("1.2G/s", 1.2e9), ("100k/s", 1e5), ("100K/s", 1e5), (5e7, 5e7), ("5e7", 5e7),
    ("50M", 50e6), ("50 M/s", 50e6), ("500/s", 500.0), (1000, 1000.0),
])
def test_rates_parse_si_prefixes_to_events_per_second(value, expected):
    assert parse_rate(value) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("bad, fragment", [("50X/s", "unknown unit 'X/s'"), ("-5M/s", "negative"),
                                           ("50MB/s", "unknown unit")])
def test_bad_rates_are_rejected(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_rate(bad)


@pytest.mark.parametrize("value, expected", [
    ("13.9GB/s", 13.9e9), ("100MB/s", 100e6), ("2GiB/s", 2 * 2**30), ("2 GiB/s", 2 * 2**30), (1e9, 1e9),
    ("512B/s", 512.0),
])
def test_bandwidths_parse_size_units_per_second(value, expected):
    assert parse_bandwidth(value) == pytest.approx(expected, rel=1e-12)


def test_bad_bandwidths_are_rejected():
    with pytest.raises(ValueError, match="unknown unit 'Gb/s'"):
        parse_bandwidth("10Gb/s")
    with pytest.raises(ValueError, match="negative"):
        parse_bandwidth("-1GB/s")


@pytest.mark.parametrize("value, expected", [(16384, 16384), ("16384", 16384), ("64k", 64000), ("1M", 10**6),
                                             ("1.5k", 1500), (np.int32(7), 7), (1e6, 10**6)])
def test_counts_parse_whole_numbers_with_si_prefixes(value, expected):
    assert parse_count(value) == expected
    assert isinstance(parse_count(value), int)


@pytest.mark.parametrize("bad, fragment", [("1.2345k", "whole number"), (2.5, "whole number"),
                                           ("-3", "negative"), ("64KiB", "unknown unit")])
def test_bad_counts_are_rejected(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_count(bad)


def test_plain_numbers_parse_within_optional_bounds_and_refuse_units():
    assert parse_number("0.99") == 0.99
    assert parse_number(-2, min=-5) == -2.0
    with pytest.raises(ValueError, match=r"within \[0, inf\], got -1"):
        parse_number(-1, min=0)
    with pytest.raises(ValueError, match="without a unit"):
        parse_number("5ms")


# ---- formatting ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("nbytes, text", [
    (0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (4 * 2**30, "4.0 GiB"),
    (1.5 * 2**20, "1.5 MiB"), (2**20 - 1, "1.0 MiB"), (5 * 2**40, "5.0 TiB"), (-4 * 2**30, "-4.0 GiB"),
])
def test_sizes_format_in_binary_units_with_one_decimal(nbytes, text):
    assert format_size(nbytes) == text


@pytest.mark.parametrize("seconds, text", [
    (0, "0 s"), (250e-9, "250 ns"), (5e-6, "5 us"), (0.12, "120 ms"), (2.5, "2.5 s"), (0.9996, "1 s"),
    (59.99, "1 min"), (90, "1.5 min"), (7200, "2 h"), (1.8e7, "5000 h"),
])
def test_durations_format_with_three_significant_digits(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("x, text", [(0.973, "97.3%"), (1, "100.0%"), (0, "0.0%"), (0.00042, "0.042%")])
def test_ratios_format_as_percentages(x, text):
    assert format_ratio(x) == text


@pytest.mark.parametrize("x, text", [(500, "500/s"), (1e5, "100 k/s"), (5e7, "50 M/s"), (1.2e9, "1.2 G/s")])
def test_rates_format_with_si_prefixes(x, text):
    assert format_rate(x) == text


@pytest.mark.parametrize("x, text", [(13.9e9, "13.9 GB/s"), (100e6, "100 MB/s"), (2**31, "2.15 GB/s")])
def test_bandwidths_format_in_decimal_units(x, text):
    assert format_bandwidth(x) == text


@pytest.mark.parametrize("nbytes", [0, 100, 4096, 2**21, 3 * 2**29, 16 * 2**30, 2**40])
def test_sizes_that_are_whole_tenths_of_a_unit_round_trip_exactly(nbytes):
    assert parse_size(format_size(nbytes)) == nbytes


@given(st.integers(min_value=0, max_value=2**50))
def test_any_size_round_trips_within_the_printed_precision(nbytes):
    back = parse_size(format_size(nbytes))
    assert abs(back - nbytes) <= 0.05 * 1024 ** max(0, (nbytes.bit_length() - 1) // 10) + 0.5


@given(st.floats(min_value=1e-9, max_value=1e6))
def test_any_duration_round_trips_to_three_significant_digits(seconds):
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=5e-3)


@given(st.floats(min_value=1.0, max_value=1e13))
def test_rates_and_bandwidths_round_trip_to_three_significant_digits(x):
    assert parse_rate(format_rate(x)) == pytest.approx(x, rel=5e-3)
    assert parse_bandwidth(format_bandwidth(x)) == pytest.approx(x, rel=5e-3)


@given(st.floats(min_value=0.0005, max_value=1.0))
def test_ratios_round_trip_to_a_tenth_of_a_percent(x):
    assert parse_ratio(format_ratio(x)) == pytest.approx(x, abs=5e-4 + 1e-12)
