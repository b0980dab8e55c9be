"""pipeline.periods: which bucket a period is charted by, and where its buckets start."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pipeline.errors import UserInputError
from pipeline.periods import (
    DAY_UP_TO,
    WEEK_UP_TO,
    Bucket,
    ago,
    bucket_edges,
    bucket_start,
    bucket_starts,
    choose_bucket,
    next_start,
)

T0 = datetime(2019, 10, 9, 14, 30, tzinfo=UTC)  # a Wednesday afternoon


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- choose_bucket ---------------------------------------------------------------------------

@pytest.mark.parametrize(("length", "bucket"), [
    (timedelta(hours=1), Bucket.DAY),
    (timedelta(days=30), Bucket.DAY),
    (timedelta(days=90), Bucket.DAY),
    (DAY_UP_TO, Bucket.DAY),  # thresholds are inclusive
    (DAY_UP_TO + timedelta(microseconds=1), Bucket.WEEK),
    (timedelta(days=365), Bucket.WEEK),
    (WEEK_UP_TO, Bucket.WEEK),
    (WEEK_UP_TO + timedelta(microseconds=1), Bucket.MONTH),
    (timedelta(days=8 * 365), Bucket.MONTH),
    (timedelta(days=100 * 365), Bucket.MONTH),
])
def test_choose_bucket_by_length(length, bucket):
    assert choose_bucket(T0 - length, T0) is bucket


def test_thresholds_keep_charts_near_a_hundred_bars():
    assert DAY_UP_TO == timedelta(days=92) and WEEK_UP_TO == timedelta(days=731)
    # The longest period of each bucket, starting at the worst moment (just before a boundary).
    assert len(bucket_starts(utc(2019, 1, 1, 23), utc(2019, 1, 1, 23) + DAY_UP_TO, Bucket.DAY)) == 93
    assert len(bucket_starts(utc(2019, 1, 6, 23), utc(2019, 1, 6, 23) + WEEK_UP_TO, Bucket.WEEK)) == 106
    assert len(bucket_starts(utc(2011, 1, 1), utc(2019, 1, 1), Bucket.MONTH)) == 96


def test_an_empty_period_is_an_input_error():
    for since, until in ((T0, T0), (T0, T0 - timedelta(seconds=1))):
        with pytest.raises(UserInputError, match="period is empty"):
            choose_bucket(since, until)
        with pytest.raises(UserInputError, match="period is empty"):
            bucket_starts(since, until, Bucket.DAY)
        with pytest.raises(UserInputError, match="period is empty"):
            bucket_edges(since, until, Bucket.DAY)


def test_naive_datetimes_are_utc_and_offsets_are_honoured():
    assert choose_bucket(datetime(2019, 1, 1), datetime(2019, 2, 1)) is Bucket.DAY
    plus3 = timezone(timedelta(hours=3))
    # 01:00 at +03:00 is 22:00 UTC the day before
    assert bucket_start(datetime(2019, 10, 1, 1, 0, tzinfo=plus3), Bucket.DAY) == utc(2019, 9, 30)
    assert bucket_start(datetime(2019, 10, 1, 1, 0), Bucket.DAY) == utc(2019, 10, 1)


# --- bucket_start ----------------------------------------------------------------------------

def test_bucket_start_day_week_month():
    assert bucket_start(T0, Bucket.DAY) == utc(2019, 10, 9)
    assert bucket_start(T0, Bucket.WEEK) == utc(2019, 10, 7)  # the Monday
    assert bucket_start(T0, Bucket.MONTH) == utc(2019, 10, 1)
    assert bucket_start(utc(2019, 10, 7), Bucket.WEEK) == utc(2019, 10, 7)  # a Monday is its own week
    assert bucket_start(utc(2019, 10, 13, 23, 59, 59), Bucket.WEEK) == utc(2019, 10, 7)  # Sunday night
    assert all(bucket_start(T0, b).tzinfo is UTC for b in Bucket)


def test_weeks_are_iso_weeks_across_a_year_end():
    # 2020-01-01 is a Wednesday: its week starts Monday 2019-12-30 (ISO week 1 of 2020).
    start = bucket_start(utc(2020, 1, 1, 12), Bucket.WEEK)
    assert start == utc(2019, 12, 30) and start.isocalendar()[:2] == (2020, 1)
    assert bucket_start(utc(2021, 1, 3), Bucket.WEEK) == utc(2020, 12, 28)  # Sunday of ISO week 53


def test_utc_buckets_ignore_daylight_saving():
    london = ZoneInfo("Europe/London")
    # 2019-10-27: the clocks went back in London; 00:30 BST is 23:30 UTC on the 26th.
    assert bucket_start(datetime(2019, 10, 27, 0, 30, tzinfo=london), Bucket.DAY) == utc(2019, 10, 26)
    days = bucket_starts(utc(2019, 10, 25), utc(2019, 10, 29), Bucket.DAY)
    assert [b - a for a, b in zip(days, days[1:], strict=False)] == [timedelta(hours=24)] * 3


# --- next_start, bucket_starts, bucket_edges --------------------------------------------------

def test_month_lengths_and_year_end():
    starts = bucket_starts(utc(2019, 11, 15), utc(2020, 4, 1), Bucket.MONTH)
    assert [s.date() for s in starts] == [date(2019, 11, 1), date(2019, 12, 1), date(2020, 1, 1),
                                          date(2020, 2, 1), date(2020, 3, 1)]
    lengths = [(b - a).days for a, b in zip(starts, [*starts[1:], next_start(starts[-1], Bucket.MONTH)],
                                            strict=True)]
    assert lengths == [30, 31, 31, 29, 31]  # 2020 is a leap year
    assert next_start(utc(2019, 2, 10), Bucket.MONTH) == utc(2019, 3, 1)
    assert next_start(utc(2019, 12, 31, 23), Bucket.MONTH) == utc(2020, 1, 1)
    assert next_start(utc(2019, 12, 31, 23), Bucket.DAY) == utc(2020, 1, 1)
    assert next_start(utc(2019, 12, 31, 23), Bucket.WEEK) == utc(2020, 1, 6)


def test_bucket_starts_list_every_bucket_of_the_period():
    # Across a year end, by week: the first week starts before `since`, the last ends after `until`.
    weeks = bucket_starts(utc(2019, 12, 20, 8), utc(2020, 1, 15), Bucket.WEEK)
    assert weeks == [utc(2019, 12, 16), utc(2019, 12, 23), utc(2019, 12, 30), utc(2020, 1, 6), utc(2020, 1, 13)]
    # `until` is excluded: a period ending at midnight does not open the next day.
    assert bucket_starts(utc(2019, 12, 30), utc(2020, 1, 1), Bucket.DAY) == [utc(2019, 12, 30), utc(2019, 12, 31)]
    assert bucket_starts(utc(2019, 12, 30), utc(2020, 1, 1, 0, 0, 1), Bucket.DAY)[-1] == utc(2020, 1, 1)
    assert bucket_starts(T0, T0 + timedelta(minutes=1), Bucket.MONTH) == [utc(2019, 10, 1)]
    eight_years = bucket_starts(utc(2011, 1, 1), utc(2018, 12, 31), Bucket.MONTH)
    assert len(eight_years) == 96 and eight_years[-1] == utc(2018, 12, 1)


def test_bucket_edges_are_the_starts_and_the_end_of_the_last_bucket():
    since, until = utc(2019, 12, 20, 8), utc(2020, 1, 15)
    assert bucket_edges(since, until, Bucket.WEEK) == [utc(2019, 12, 16), utc(2019, 12, 23), utc(2019, 12, 30),
                                                        utc(2020, 1, 6), utc(2020, 1, 13), utc(2020, 1, 20)]
    assert bucket_edges(T0, T0 + timedelta(minutes=1), Bucket.DAY) == [utc(2019, 10, 9), utc(2019, 10, 10)]
    assert bucket_edges(utc(2019, 11, 15), utc(2020, 1, 1), Bucket.MONTH) == [
        utc(2019, 11, 1), utc(2019, 12, 1), utc(2020, 1, 1)]
    for bucket in Bucket:
        edges = bucket_edges(since, until, bucket)
        assert edges[:-1] == bucket_starts(since, until, bucket)
        assert edges[0] <= since and edges[-1] >= until and edges == sorted(set(edges))


def test_bucket_values_are_postgres_date_trunc_units():
    assert [b.value for b in Bucket] == ["day", "week", "month"]


@pytest.mark.parametrize(("offset", "text"), [
    (timedelta(seconds=30), "30s ago"), (timedelta(minutes=12), "12m ago"), (timedelta(hours=47), "47h ago"),
    (timedelta(days=12), "12d ago"), (-timedelta(hours=3), "in 3h"), (None, "never")])
def test_ago_says_how_long_before_or_after_now_in_a_few_characters(offset, text):
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert ago(None if offset is None else now - offset, now) == text
