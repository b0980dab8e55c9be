"""Quality checks on a run: pure rules over counts and a few database facts.

An `error` fails the Airflow run loudly; a `warning` is logged and kept in `ingest_runs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    feeds_polled: int
    feeds_ok: int
    last_feed_success: datetime | None  # across all feeds, before this run
    extract_attempted: int
    extract_succeeded: int
    stuck: dict[str, int]  # status -> articles waiting far longer than they should
    now: datetime
    # Feeds still claimed by a poll that is gone (its lease ran out, or its run has finished):
    # they look "not due" to every other poll until the claim is taken back.
    orphaned_feeds: list[dict] = field(default_factory=list)
    feeds_leased_elsewhere: int = 0  # claimed right now by another, live poll


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    name: str
    severity: str  # ok | warning | error
    message: str


def evaluate(f: Facts, *, min_extract_rate: float, stuck_hours: float) -> list[Check]:
    checks: list[Check] = []
    if f.orphaned_feeds:
        first = f.orphaned_feeds[0]
        until = first.get("claimed_until")
        checks.append(Check(
            name="stale_claims", severity="error",
            message=f"{len(f.orphaned_feeds)} feeds are claimed by a poll that is gone "
                    f"(e.g. {first.get('url')} by {first.get('claimed_by')}"
                    + (f", lease until {until:%H:%M:%S} UTC" if until else "") + "); other polls skip them "
                    "until the claim is taken back (a crashed or killed worker?)"))
    if f.feeds_polled == 0:
        if f.orphaned_feeds:
            checks.append(Check(name="feeds_polled", severity="error",
                                message="no feed was polled: due feeds are held by a poll that is gone"))
        elif f.feeds_leased_elsewhere:
            checks.append(Check(name="feeds_polled", severity="warning",
                                message=f"no feed was polled: {f.feeds_leased_elsewhere} feeds are being "
                                        "polled by another worker"))
        else:
            checks.append(Check(name="feeds_polled", severity="ok", message="no feed was due"))
    elif f.feeds_ok == 0:
        recent = f.last_feed_success is not None and f.now - f.last_feed_success < timedelta(days=7)
        msg = f"none of the {f.feeds_polled} feeds polled successfully"
        if recent:
            checks.append(Check(name="feeds_polled", severity="error",
                                message=f"{msg}; the last success was {f.last_feed_success:%Y-%m-%d %H:%M} UTC "
                                        "(network, DNS or proxy down?)"))
        else:
            # A new install without network: worth saying, not worth a red run every 30 minutes.
            checks.append(Check(name="feeds_polled", severity="warning",
                                message=f"{msg}, and none ever has: check the network and `newsroom feeds status`"))
    else:
        checks.append(Check(name="feeds_polled", severity="ok",
                            message=f"{f.feeds_ok} of {f.feeds_polled} feeds polled successfully"))
    if f.extract_attempted >= 10:
        rate = f.extract_succeeded / f.extract_attempted
        severity = "error" if rate < min_extract_rate else "ok"
        checks.append(Check(name="extraction_rate", severity=severity,
                            message=f"extraction succeeded for {rate:.0%} of {f.extract_attempted} pages "
                                    f"(threshold {min_extract_rate:.0%})"))
    stuck = {k: v for k, v in f.stuck.items() if v}
    if stuck:
        detail = ", ".join(f"{n} {status}" for status, n in sorted(stuck.items()))
        checks.append(Check(name="stuck_articles", severity="error",
                            message=f"articles stuck for over {stuck_hours:g} h: {detail}"))
    else:
        checks.append(Check(name="stuck_articles", severity="ok", message="no article is stuck"))
    return checks


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.severity == "error"]
