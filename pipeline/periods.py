"""Time buckets for charts over a period: by day, week or month as the period grows.

    bucket = choose_bucket(since, until)          # Bucket.DAY | WEEK | MONTH
    bucket_starts(since, until, bucket)           # every bucket of the period, empty ones too
    date_trunc(%s, published_effective, 'UTC')    # the same buckets in SQL: bucket.value is the unit
    ago(when, now)                                # "12m ago", "in 3h": a time relative to now

The one rule for how finely a period is charted (the report's topic chart; the Airflow UI pages
later), pure: no database, no matplotlib. All in UTC, so a day is always 24 hours and buckets never
move with daylight saving time. A week is the ISO week, starting Monday, as Postgres's
date_trunc('week', ...) has it; a month starts on its 1st. A naive datetime is taken as UTC, as
pipeline.queries takes it.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from enum import StrEnum

from pipeline.errors import UserInputError


class Bucket(StrEnum):
    """How finely a period is counted. Each value is Postgres's date_trunc unit for it."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


# Thresholds keep a chart at a readable ~13-106 bars for periods up to two years, and ~100 bars
# for eight years (the archive's usual reach): one bar per day up to a quarter (92 days covers any
# three calendar months, and `--since 90d`: at most 93 daily bars), one per week up to two years
# (731 days, a leap year included: at most 106 weekly bars), one per month beyond (97 for eight years).
DAY_UP_TO = timedelta(days=92)
WEEK_UP_TO = timedelta(days=731)


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _period(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    since, until = _utc(since), _utc(until)
    if since >= until:  # the same words as pipeline.queries' window check
        raise UserInputError(f"the period is empty: {since:%Y-%m-%d %H:%M} is not before {until:%Y-%m-%d %H:%M}")
    return since, until


def choose_bucket(since: datetime, until: datetime) -> Bucket:
    """The bucket for charting [since, until): day up to 92 days, week up to 731 days, month beyond.
    An empty period (since >= until) raises UserInputError."""
    since, until = _period(since, until)
    length = until - since
    if length <= DAY_UP_TO:
        return Bucket.DAY
    if length <= WEEK_UP_TO:
        return Bucket.WEEK
    return Bucket.MONTH


def bucket_start(when: datetime, bucket: Bucket) -> datetime:
    """Midnight UTC starting the bucket that holds `when`: its day, the Monday of its ISO week, or
    the 1st of its month. What date_trunc(bucket.value, when, 'UTC') gives in Postgres."""
    day = _utc(when).date()
    if bucket is Bucket.WEEK:
        day -= timedelta(days=day.weekday())
    elif bucket is Bucket.MONTH:
        day = day.replace(day=1)
    return datetime.combine(day, time(), tzinfo=UTC)


def next_start(when: datetime, bucket: Bucket) -> datetime:
    """The start of the bucket after the one holding `when`."""
    start = bucket_start(when, bucket)
    if bucket is Bucket.DAY:
        return start + timedelta(days=1)
    if bucket is Bucket.WEEK:
        return start + timedelta(days=7)
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def bucket_starts(since: datetime, until: datetime, bucket: Bucket) -> list[datetime]:
    """Every bucket overlapping [since, until), by start, oldest first; the first may start before
    `since` (a period starting on a Wednesday is in the week from that Monday). Listing them all
    lets a chart draw an empty bucket as zero instead of leaving it out."""
    since, until = _period(since, until)
    starts = [bucket_start(since, bucket)]
    while (following := next_start(starts[-1], bucket)) < until:
        starts.append(following)
    return starts


def ago(when: datetime | None, now: datetime) -> str:
    """How long before (or after) `now` a time is, in at most 7 characters with " ago": "59s ago",
    "59m ago", "47h ago", "12d ago", "in 3h"; "never" for None. (`newsroom feeds status` and the
    UI pages say it the same way.)"""
    if when is None:
        return "never"
    secs = (now - when).total_seconds()
    future = secs < 0
    secs = abs(secs)
    text = (f"{secs:.0f}s" if secs < 59.5 else f"{secs / 60:.0f}m" if secs < 3570
            else f"{secs / 3600:.0f}h" if secs < 171_000 else f"{secs / 86400:.0f}d")
    return f"in {text}" if future else f"{text} ago"


def bucket_edges(since: datetime, until: datetime, bucket: Bucket) -> list[datetime]:
    """The buckets' edges for drawing them: every start, then the end of the last bucket (one
    more than bucket_starts). Buckets at either end may reach outside the period; they are drawn
    whole, so the latest week is as wide as the others rather than a sliver."""
    starts = bucket_starts(since, until, bucket)
    return [*starts, next_start(starts[-1], bucket)]
