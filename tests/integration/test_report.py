"""pipeline/report.py's build_report on the test corpus: which buckets the topic chart draws as the
period grows, and that a quiet or empty period still writes every file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from matplotlib.patches import StepPatch
from test_views import build_corpus

from pipeline import periods, queries, report
from pipeline.errors import UserInputError

FILES = ("index.html", report.TOPIC_CHART, report.ENTITY_CHART, report.FEED_CHART)


@pytest.fixture
def corpus(conn):
    return build_corpus(conn)


@pytest.fixture
def figures(monkeypatch):
    """The figures build_report saves, by file name (still saved)."""
    saved = {}
    save = report._save

    def keep(fig, path):
        saved[path.name] = fig
        save(fig, path)

    monkeypatch.setattr(report, "_save", keep)
    return saved


def _drawn(fig) -> dict[str, tuple[list[float], list[float], list]]:
    """Per panel title: (all copies per bucket, originals per bucket, bucket edges as dates)."""
    out = {}
    for ax in fig.axes:
        steps = [p for p in ax.patches if isinstance(p, StepPatch)]
        assert len(steps) == 2, ax.get_title(loc="left")
        (values, edges, _), (originals, _, _) = (s.get_data() for s in steps)
        out[ax.get_title(loc="left")] = (list(values), list(originals), list(edges))
    return out


@pytest.mark.parametrize(("days", "bucket"), [(30, "day"), (365, "week"), (8 * 365, "month")])
def test_the_topic_chart_counts_per_day_week_or_month_as_the_period_grows(conn, corpus, tmp_path, figures,
                                                                           days, bucket):
    since, until = corpus.now - timedelta(days=days), corpus.now
    index = report.build_report(conn, since, tmp_path, until=until)
    assert all((tmp_path / f).stat().st_size > 0 for f in FILES)
    fig = figures[report.TOPIC_CHART]
    assert fig._suptitle.get_text() == f"Tagged articles per {bucket} (UTC), by topic"
    page = index.read_text(encoding="utf-8")
    assert f"One bar per {bucket} (UTC" in page and f"alt='Tagged articles per {bucket} (UTC) by topic'" in page

    starts = periods.bucket_starts(since, until, periods.Bucket(bucket))
    assert len(starts) in {30: (30, 31), 365: (53, 54), 8 * 365: (96, 97)}[days]
    expected = {}  # topic name -> {bucket start: articles}, from the query the chart draws
    for r in queries.topic_timeline(conn, since, until=until, bucket=periods.Bucket(bucket)):
        expected.setdefault(r["name"], {})[r["bucket"]] = r["articles"]
    drawn = _drawn(fig)
    assert len(drawn) == len(expected) >= 4  # a topic with no articles in the period gets no panel
    for title, (values, originals, _) in drawn.items():
        name = title.rsplit(" (", 1)[0]
        # every bucket of the period is drawn, the quiet ones as zero
        assert values == [expected[name].get(s, 0) for s in starts]
        assert all(o <= v for o, v in zip(originals, values, strict=True))
        assert title.endswith(f"({int(sum(values))} article{'' if sum(values) == 1 else 's'})")
    edges = next(iter(drawn.values()))[2]
    assert len(edges) == len(starts) + 1


def test_a_period_of_old_empty_years_still_writes_every_file(conn, corpus, tmp_path, figures):
    since, until = datetime(2001, 1, 1, tzinfo=UTC), datetime(2009, 1, 1, tzinfo=UTC)
    index = report.build_report(conn, since, tmp_path, until=until)
    assert all((tmp_path / f).stat().st_size > 0 for f in FILES)
    page = index.read_text(encoding="utf-8")
    assert "No tagged articles in this period" in page and "2001-01-01 00:00" in page and "2009-01-01 00:00" in page
    assert "No entities mentioned in tagged articles in this period" in page
    assert figures[report.TOPIC_CHART].axes == []  # the "no data" chart
    assert "Al-Monitor" in page  # feed health does not depend on the period


def test_an_empty_period_is_refused_before_anything_is_written(conn, tmp_path):
    when = datetime(2019, 10, 1, tzinfo=UTC)
    with pytest.raises(UserInputError, match="period is empty"):
        report.build_report(conn, when, tmp_path / "out", until=when)
    assert not (tmp_path / "out").exists()


def test_naive_datetimes_are_utc(conn, corpus, tmp_path):
    index = report.build_report(conn, datetime(2019, 1, 1), tmp_path, until=datetime(2019, 4, 1))
    assert "Articles published 2019-01-01 00:00 to 2019-04-01 00:00 UTC" in index.read_text(encoding="utf-8")
