"""The `summary` task's log table and its word on a run that brought in nothing new (pure parts:
pipeline.tasks.summary_lines, pipeline.ingest.polling_note)."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.ingest import _duration, polling_note
from pipeline.quality import Check
from pipeline.tasks import summary_lines

COUNTS = {"feeds_ok": 12, "feeds_failed": 1, "articles_new": 7, "pages_fetched": 7, "articles_extracted": 6,
          "articles_tagged": 6, "articles_failed": 1}
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_columns_stay_aligned_with_long_topic_slugs_and_check_names():
    long_slug = "a-very-long-topic-slug-about-the-syrian-civil-war-and-its-ceasefires"
    top = [("s400-f35-dispute", 123), (long_slug, 7), ("x", 45)]
    checks = [Check(name="extraction_rate_is_healthy_over_ten_pages", severity="warning",
                    message="3 of 10\n extractions failed"),
              Check(name="fine", severity="ok", message="")]
    lines = summary_lines("manual__2026", COUNTS, top, checks, ["poll_feeds[1] failed: X"], None)
    pad = " " * (2 + len("check extraction_rate_is_healthy_over_ten_pages") + 2)  # the longest label decides
    assert lines == [
        "Newsroom run manual__2026",
        "  feeds ok / failed".ljust(len(pad)) + "12 / 1",
        "  new articles".ljust(len(pad)) + "7",
        "  pages fetched".ljust(len(pad)) + "7",
        "  extracted".ljust(len(pad)) + "6",
        "  tagged".ljust(len(pad)) + "6",
        "  failed".ljust(len(pad)) + "1",
        "  top topics".ljust(len(pad)) + "123  s400-f35-dispute",
        pad + "  7  " + long_slug,  # counts right-aligned: every slug starts in one column
        pad + " 45  x",
        "  check extraction_rate_is_healthy_over_ten_pages  warning: 3 of 10 extractions failed",  # one line
        "  failed task".ljust(len(pad)) + "poll_feeds[1] failed: X",
    ], "\n".join(lines)


def test_short_labels_only_when_nothing_long_is_shown():
    lines = summary_lines("r", COUNTS, [], [], [], None)
    assert lines[1] == "  feeds ok / failed  12 / 1"
    assert lines[2] == "  new articles       7"


def test_the_polling_note_is_a_row():
    lines = summary_lines("r", {**COUNTS, "articles_new": 0}, [], [], [], "no feed was due: the next poll ...")
    assert "  nothing new        no feed was due: the next poll ..." in lines


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (45, "45 s"), (60, "1 min"), (12 * 60 + 10, "12 min"), (3600, "1 h"), (2 * 3600 + 5 * 60, "2 h 5 min"),
    (3 * 86400, "3 days"), (-5, "0 s"),
])
def test_duration(seconds, text):
    assert _duration(seconds) == text


def _schedule(**kw):
    return {"now": NOW, "enabled": 3, "due": 0, "next_at": NOW + timedelta(minutes=12), "next_name": "Ok Daily", **kw}


@pytest.mark.parametrize(("poll", "schedule", "expected"), [
    (Counter(polled=3, new_articles=2, ok=3), None, None),
    (Counter(), _schedule(),
     "no feed was due: the next poll is due in 12 min (Ok Daily); trigger again after that or wait for the schedule"),
    (Counter(), _schedule(next_name="Multi\nline   name"), "(Multi line name)"),
    (Counter(polled=3, not_modified=3), None,
     "3 feeds polled, nothing new (all not modified since their last poll: 304 Not Modified or the same body)"),
    (Counter(polled=1, not_modified=1), None, "1 feed polled, nothing new (all not modified"),
    (Counter(polled=4, not_modified=2, ok=1, error=1), None,
     "4 feeds polled, nothing new (2 not modified, 1 carried only entries already stored, 1 failed)"),
    (Counter(polled=2, error=2), None, "2 feeds polled, nothing new (all failed; `newsroom feeds status --failing`"),
    (Counter(leased_elsewhere=5), None, "no feed was polled: 5 feeds are being polled by another run right now"),
    (Counter(), _schedule(enabled=0, next_at=None, next_name=None), "no feed is enabled"),
    (Counter(), _schedule(due=2), "2 feeds are due now"),
    (Counter(), _schedule(next_at=None, next_name=None), "no feed was due"),
])
def test_polling_note_says_why_a_run_brought_nothing_new(poll, schedule, expected):
    note = polling_note(poll, schedule)
    if expected is None:
        assert note is None
    else:
        assert expected in note, note
        assert "\n" not in note
