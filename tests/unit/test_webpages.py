"""The UI pages' pure parts: entity highlighting, snippets, SVG charts, topic bars. Everything an
article or a feed server wrote reaches the page escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline import charts, periods, webpages

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _m(start, end, surface, label="PERSON", name=None):
    return {"start_char": start, "end_char": end, "surface": surface, "label": label, "name": name or surface}


def test_highlight_marks_mentions_where_their_offsets_still_fit():
    body = "Erdogan met Putin in Sochi.\nThe S-400 deal stands."
    out = webpages.highlight(body, [_m(0, 7, "Erdogan"), _m(12, 17, "Putin"), _m(21, 26, "Sochi", "GPE"),
                                    _m(32, 37, "Wrong")])  # stale: the body moved since tagging
    assert out.count("<mark") == 3 and "Wrong" not in out
    assert '<mark class="entity gpe" title="Sochi (GPE)">Sochi</mark>' in out
    assert out.count("<p>") == 2


def test_highlight_skips_overlaps_and_out_of_range_offsets():
    body = "New York City"
    out = webpages.highlight(body, [_m(0, 13, "New York City", "GPE"), _m(0, 8, "New York", "GPE"),
                                    _m(5, 50, "x"), _m(-3, 2, "Ne"), _m(4, 4, "")])
    assert out.count("<mark") == 1
    across = webpages.highlight("New\nYork", [_m(0, 8, "New\nYork", "GPE")])
    assert "<mark" not in across and across == "<p>New</p><p>York</p>"


def test_highlight_escapes_the_body_and_the_names():
    body = '<script>alert(1)</script> "Bob" & <b>co</b>'
    out = webpages.highlight(body, [_m(27, 30, "Bob", "PER<x>", name='Bob"><img src=x>')])
    assert "<script>" not in out and "&lt;script&gt;" in out and "<b>co" not in out
    assert "<img" not in out and 'class="entity per&lt;x&gt;"' in out


def test_highlight_cuts_a_huge_body_and_copes_with_none():
    assert len(webpages.highlight("x" * 10_000_000, [])) < webpages.BODY_CHARS + 100
    assert webpages.highlight(None, [_m(0, 3, "abc")]) == ""


def test_snippets_keep_only_the_databases_bold_tags():
    out = webpages.snippet('a <b>S-400</b> <i>x</i> <script>y</script> &amp;')
    assert out == "a <b>S-400</b> &lt;i&gt;x&lt;/i&gt; &lt;script&gt;y&lt;/script&gt; &amp;amp;"


def test_bar_chart_draws_a_bar_per_bucket_with_articles_and_escapes_its_title():
    bars = [charts.Bar(T0 + timedelta(days=i), T0 + timedelta(days=i + 1), n, n // 2) for i, n in enumerate([3, 0, 7])]
    svg = charts.bar_chart(bars, title="<Idlib> & co")
    assert svg.startswith('<svg class="chart"') and svg.count('class="bar"') == 2 and svg.count('class="bar orig"') == 2
    assert "&lt;Idlib&gt; &amp; co" in svg and "<Idlib>" not in svg
    assert ">10<" in svg  # the axis top, rounded up from 7


@pytest.mark.parametrize(("value", "top"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (11, 20), (999, 1000), (1001, 2000)])
def test_axis_tops_are_round(value, top):
    assert charts._nice_max(value) == top


def test_empty_and_odd_inputs_still_make_valid_charts():
    assert charts.bar_chart([], title="t").endswith("</svg>")
    assert charts.spark(None) == "" and charts.spark([0, 0, 0]).count("<rect") == 0
    assert charts.spark([1, -5, 3]).count("<rect") == 2


def test_topic_bars_fill_empty_buckets_and_ignore_rows_outside_the_period():
    since, until = T0, T0 + timedelta(days=5)
    rows = [{"bucket": T0 + timedelta(days=1), "slug": "idlib", "articles": 4, "originals": 3},
            {"bucket": T0 + timedelta(days=9), "slug": "idlib", "articles": 9, "originals": 9}]
    bars = webpages.topic_bars(rows, since, until, periods.Bucket.DAY)
    assert [b.total for b in bars["idlib"]] == [0, 4, 0, 0, 0]


def test_render_escapes_what_rows_carry():
    page = webpages.render("feeds.html", base="/newsroom", title="Feeds", tab="feeds", counts={"failing": 1}, polled=1,
                           feeds=[{"feed_id": 1, "name": "<script>x</script>", "url": "http://e/\"><b>", "status": "failing",
                                   "enabled": True, "last_success_at": None, "failure_streak": 2,
                                   "last_error_class": "http_5xx", "last_error": "<img src=x onerror=alert(1)>",
                                   "next_poll_at": T0, "articles_7d": 0, "daily_7d": [0] * 7,
                                   "disabled_detail": None}])
    assert "<script>x" not in page and "<img src=x" not in page and "&lt;script&gt;" in page
    assert 'data-status="failing"' in page
