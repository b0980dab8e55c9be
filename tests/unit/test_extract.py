"""The extraction stage on small handwritten pages (tests/fixtures/pages), plus one optional
quality check on the shared extraction-dev set when it is present on this machine."""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from trafilatura import load_html

from pipeline.errors import ItemFailed
from pipeline.extract import (
    EXTRACTOR_VERSION,
    ExtractionFailed,
    clean_lines,
    content_hash,
    count_words,
    detect_language,
    extract_article,
    json_ld_body,
    reconcile_dates,
    url_date,
)
from pipeline.records import Extraction

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "tests" / "fixtures" / "pages"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

ENGLISH = (
    "The committee met on Tuesday to review the results of the spring survey, which found that "
    "most residents were happy with the new library but wanted it to open earlier in the morning. "
    "Officials said they would look at the budget again before the end of the year and report back "
    "to the council in the autumn, when the next round of spending decisions is due to be made."
)
GERMAN = (
    "Der Ausschuss hat sich am Dienstag getroffen, um die Ergebnisse der Umfrage zu besprechen. "
    "Die meisten Bewohner sind mit der neuen Bibliothek zufrieden, aber sie wünschen sich, dass sie "
    "am Morgen früher geöffnet wird. Die Verwaltung will das Budget noch einmal prüfen und dem Rat "
    "im Herbst berichten, wenn die nächsten Entscheidungen über die Ausgaben anstehen."
)
PORTUGUESE = (
    "O comitê se reuniu na terça-feira para analisar os resultados da pesquisa, que mostrou que a "
    "maioria dos moradores está satisfeita com a nova biblioteca, mas gostaria que ela abrisse mais "
    "cedo pela manhã. Os funcionários disseram que vão rever o orçamento antes do fim do ano e que "
    "vão apresentar um relatório ao conselho no outono, quando as próximas decisões forem tomadas."
)
JAPANESE = (
    "委員会は火曜日に会合を開き、春の調査の結果を検討しました。多くの住民は新しい図書館に満足していますが、"
    "朝もう少し早く開館してほしいと考えています。担当者は年末までに予算を見直し、秋に議会へ報告すると述べました。"
    "次の支出に関する決定は秋に行われる予定です。"
)


def page(*paragraphs: str, head: str = "", html_attrs: str = "", title: str = "A story") -> str:
    """A minimal article page around the given paragraphs."""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html {html_attrs}><head><meta charset='utf-8'><title>{title}</title>{head}</head>"
        f"<body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        f"<footer><p>Copyright 2024 Example Media.</p></footer></body></html>"
    )


def fixture(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


# --- a normal article ------------------------------------------------------------------------

def test_normal_article_body_and_metadata():
    ex = extract_article(fixture("article.html"), url="https://ledger.example/news/2024/03/05/harbour-ferry-vote")
    assert isinstance(ex, Extraction)
    assert ex.text.startswith("Councillors in Port Alder voted late on Monday")
    assert ex.text.endswith("we have to fight for it again.\"")
    assert "How the crossing will be paid for" in ex.text  # subheadings are part of the story
    # Navigation, the repeated headline, the byline, related links and the footer are not.
    for junk in ("Sport", "By Maria Lindqvist", "Related stories", "Bridge plan shelved", "All rights reserved"):
        assert junk not in ex.text
    assert not ex.text.startswith("Harbour town votes")
    assert ex.title == "Harbour town votes to keep its last ferry running"
    assert ex.author == "Maria Lindqvist"
    assert ex.language == "en"
    assert ex.published_at == datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
    assert ex.published_at.tzinfo is UTC
    assert ex.published_source == "page"
    assert ex.word_count == count_words(ex.text) > 300
    assert ex.content_hash == content_hash(ex.text)
    assert len(ex.content_hash) == 64
    assert ex.extractor_version == EXTRACTOR_VERSION


def test_feed_title_fills_a_missing_title():
    html = f"<html><body><div><p>{ENGLISH}</p><p>{ENGLISH}</p></div></body></html>"
    ex = extract_article(html, feed_title="  Library hours under review ")
    assert ex.title == "Library hours under review"


def test_embedded_tweets_are_kept():
    html = page(
        ENGLISH,
        "Many people reacted online.",
        ENGLISH,
    ).replace(
        "<p>Many people reacted online.</p>",
        "<p>Many people reacted online.</p><div class='social-media-embed'><blockquote class='twitter-tweet'>"
        "<p>The library should open at seven, not nine. Some of us work early shifts.</p>"
        "— A Resident (@resident) <a href='https://twitter.com/x/status/1'>June 1, 2024</a></blockquote></div>",
    )
    ex = extract_article(html)
    assert "The library should open at seven, not nine." in ex.text


# --- JSON-LD ---------------------------------------------------------------------------------

def test_json_ld_article_body_used_when_the_html_has_none():
    ex = extract_article(fixture("jsonld_article.html"))
    lines = ex.text.splitlines()
    assert lines[0].startswith("Overnight passenger trains will run on the northern line again")
    assert len(lines) == 5  # the <p> structure inside the JSON string survives
    assert "seats starting at £45 and cabins at £120" in ex.text  # double-escaped entities decoded
    assert "<p>" not in ex.text and "Loading" not in ex.text
    assert ex.title == "Night trains return to the northern line"
    assert ex.author == "Samuel Okafor"
    assert ex.published_at == datetime(2023, 11, 20, 6, 15, tzinfo=UTC)
    assert ex.language == "en"


def test_json_ld_body_plain_text_and_truncated_teaser():
    assert json_ld_body([{"@type": "NewsArticle", "articleBody": "First line.\n\n  Second   line."}]) == (
        "First line.\nSecond line."
    )
    assert json_ld_body([{"articleBody": "Only the first two sentences of the story are here…"}]) == ""
    assert json_ld_body([{"articleBody": "short"}, {"articleBody": "the longer body wins"}]) == "the longer body wins"
    assert json_ld_body([{"headline": "no body"}]) == ""


# --- refusals --------------------------------------------------------------------------------

def test_paywall_stub_from_json_ld_flag():
    with pytest.raises(ExtractionFailed) as info:
        extract_article(fixture("paywall.html"))
    assert info.value.reason == "paywall"
    assert "isAccessibleForFree" in str(info.value)


def test_paywall_stub_from_wording_alone():
    teaser = (
        "The city council is weighing a plan to close two branch libraries next year, according to "
        "documents seen by this newspaper, a move that would save about two million dollars."
    )
    html = page(teaser, "Subscribe to continue reading. Get unlimited digital access for $1 a week.")
    with pytest.raises(ExtractionFailed) as info:
        extract_article(html)
    assert info.value.reason == "paywall"


def test_teaser_that_is_only_the_feed_summary_is_a_paywall():
    summary = (
        "The city council is weighing a plan to close two branch libraries next year, according to "
        "documents seen by this newspaper, a move that would save about two million dollars and "
        "affect the opening hours of the three branches that remain open"
    )
    html = page(summary + "…")
    with pytest.raises(ExtractionFailed) as info:
        extract_article(html, feed_summary=summary + ".")
    assert info.value.reason == "paywall"


def test_full_article_with_a_subscribe_link_is_not_a_paywall():
    html = fixture("article.html").replace(
        '<a href="/">The Coastal Ledger</a>',
        '<a href="/">The Coastal Ledger</a> <a href="/login">Already a subscriber? Sign in</a>',
    )
    assert extract_article(html).word_count > 300


def test_index_page_is_not_an_article():
    with pytest.raises(ExtractionFailed) as info:
        extract_article(fixture("index.html"), url="https://daily.example/business")
    assert info.value.reason == "not_article"


def test_index_page_whose_headlines_are_extracted_is_not_an_article():
    # trafilatura's rescue turns a bare list of headline links into one long "paragraph"
    heads = "".join(
        f"<h3><a href='/story/{i}'>Council approves budget for new community centre in district {i}</a></h3>"
        for i in range(12)
    )
    html = f"<html><head><title>Latest</title></head><body><main><article>{heads}</article></main></body></html>"
    with pytest.raises(ExtractionFailed) as info:
        extract_article(html)
    assert info.value.reason == "not_article"


@pytest.mark.parametrize(
    ("html", "reasons"),
    [
        ("", {"empty_html"}),
        ("   \n\t ", {"empty_html"}),
        ("\x00\x01\x02 binary garbage \xff", {"empty_html"}),
        ("%PDF-1.4 not html at all", {"empty_html", "no_body", "too_short"}),
        ("<html><body></body></html>", {"empty_html"}),
        ("<html><body><div><p>Short note.</p></div></body></html>", {"no_body", "too_short"}),
    ],
)
def test_empty_or_garbage_html_fails(html, reasons):
    with pytest.raises(ExtractionFailed) as info:
        extract_article(html)
    assert info.value.reason in reasons


def test_too_short_body():
    html = page("The meeting has been postponed until next week because of the storm warning.", "More soon.")
    with pytest.raises(ExtractionFailed) as info:
        extract_article(html)
    assert info.value.reason in ("too_short", "no_body")


def test_extraction_failed_is_permanent_and_machine_readable():
    err = ExtractionFailed("paywall", "teaser only")
    assert isinstance(err, ItemFailed) and err.transient is False
    assert err.reason == "paywall"
    assert "paywall" in str(err) and "teaser only" in str(err)
    with pytest.raises(ValueError):
        ExtractionFailed("something_else")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.reason, copy.detail, str(copy)) == ("paywall", "teaser only", str(err))


# --- dates -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://news.example/2019/11/05/story-slug", date(2019, 11, 5)),
        ("https://news.example/world/2019-11-05-story", date(2019, 11, 5)),
        ("https://news.example/2019/1/5/story", date(2019, 1, 5)),
        ("https://news.example/archive/20191105/story.html", date(2019, 11, 5)),
        ("https://news.example/2019/11/story", None),  # a month is not a day
        ("https://news.example/2019/13/45/story", None),
        ("https://news.example/story/1206313", None),
        ("https://2019-11-05.example/story", None),  # the host is not the path
        (None, None),
    ],
)
def test_url_date(url, expected):
    got = url_date(url)
    assert (got.date() if got else None) == expected
    if got:
        assert got.tzinfo is UTC


def d(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("page", "feed", "url", "expected"),
    [
        # the page agrees with the feed: the page wins
        (d(2024, 5, 30, 9, 0), d(2024, 5, 30, 10, 0), None, (d(2024, 5, 30, 9, 0), "page")),
        # the page is far from the feed date (a related story's date?): the feed wins
        (d(2023, 1, 2, 9, 0), d(2024, 5, 30, 10, 0), None, (d(2024, 5, 30, 10, 0), "feed")),
        # a page date in the future loses to the feed, and with no feed to the URL
        (d(2024, 7, 1), d(2024, 5, 30, 10, 0), None, (d(2024, 5, 30, 10, 0), "feed")),
        (d(2024, 7, 1), None, d(2024, 5, 30), (d(2024, 5, 30), "url")),
        (d(2024, 7, 1), None, None, (None, None)),
        # a bare day on the page, the feed's timestamp that same day: the feed is more precise
        (d(2024, 5, 30), d(2024, 5, 30, 17, 45), None, (d(2024, 5, 30, 17, 45), "feed")),
        # no feed: the page beats the URL unless the two disagree by days
        (d(2024, 5, 30, 9, 0), None, d(2024, 5, 30), (d(2024, 5, 30, 9, 0), "page")),
        (d(2016, 4, 5), None, d(2024, 5, 30), (d(2024, 5, 30), "url")),
        # the URL is the last resort
        (None, None, d(2024, 5, 30), (d(2024, 5, 30), "url")),
        (None, d(2024, 5, 30, 10, 0), d(2024, 5, 29), (d(2024, 5, 30, 10, 0), "feed")),
        # before the web-news era: a parsing accident
        (d(1970, 1, 1), None, None, (None, None)),
        (None, None, None, (None, None)),
    ],
)
def test_reconcile_dates(page, feed, url, expected):
    assert reconcile_dates(page=page, feed=feed, url=url, now=NOW) == expected


def test_reconcile_dates_normalises_to_utc():
    naive = datetime(2024, 5, 30, 12, 0)
    assert reconcile_dates(page=naive, feed=None, url=None, now=NOW) == (d(2024, 5, 30, 12, 0), "page")
    aware = datetime(2024, 5, 30, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert reconcile_dates(page=aware, feed=None, url=None, now=NOW) == (d(2024, 5, 30, 10, 0), "page")
    assert reconcile_dates(page=None, feed=None, url=date(2024, 5, 30), now=NOW) == (d(2024, 5, 30), "url")


def test_feed_date_wins_when_the_page_date_is_far_off():
    feed = d(2024, 4, 20, 7, 0)
    ex = extract_article(fixture("article.html"), feed_published=feed)
    assert (ex.published_at, ex.published_source) == (feed, "feed")


def test_page_date_wins_when_it_agrees_with_the_feed():
    ex = extract_article(fixture("article.html"), feed_published=d(2024, 3, 5, 10, 0))
    assert (ex.published_at, ex.published_source) == (d(2024, 3, 5, 8, 30), "page")


def test_future_page_date_loses_to_the_feed():
    soon = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    html = fixture("article.html").replace("2024-03-05", soon).replace("5 March 2024", "")
    feed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    ex = extract_article(html, feed_published=feed)
    assert (ex.published_at, ex.published_source) == (feed, "feed")


def test_url_date_is_the_last_resort():
    html = page(ENGLISH, ENGLISH)
    ex = extract_article(html, url="https://news.example/2024/05/30/library-hours")
    assert (ex.published_at, ex.published_source) == (d(2024, 5, 30), "url")
    assert extract_article(html).published_at is None


# --- language --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("html_attrs", "head", "text", "expected"),
    [
        ('lang="en-US"', "", ENGLISH, "en"),
        ("", '<meta property="og:locale" content="pt_BR">', PORTUGUESE, "pt"),
        ('lang="en"', '<meta http-equiv="Content-Language" content="de">', GERMAN, "de"),
        ('lang="ja"', "", JAPANESE, "ja"),  # no stopword list for Japanese: the declaration stands
        ("", "", ENGLISH, "en"),  # nothing declared: the stopword vote
        ('lang="de"', "", ENGLISH, "en"),  # a template left at "de" on an English article
        ('lang="pt-BR"', "", PORTUGUESE, "pt"),
    ],
)
def test_language(html_attrs, head, text, expected):
    ex = extract_article(page(text, text, head=head, html_attrs=html_attrs))
    assert ex.language == expected


def test_language_unknown_without_declaration_or_enough_text():
    tree = load_html("<html><head></head><body><p>Hello there.</p><p>Bye.</p></body></html>")
    assert detect_language(tree, [], "Hello there.") is None


# --- line clean-up, hashing, counting --------------------------------------------------------

def test_clean_lines_drops_title_byline_related_and_promos():
    text = "\n".join([
        "Library hours under review",
        "By Jane Doe and John Roe",
        "Tuesday, 4 June 2024 at 10:15",
        "The committee met on Tuesday to review the results of the spring survey.",
        "Related: Council approves new library budget",
        "- Five things to know about the new library",
        "Officials said they would subscribe to a new booking system next year.",
        "   Residents   will be consulted in July.  ",
        "Sign up for our morning newsletter",
        "Follow us on Twitter @example",
    ])
    cleaned = clean_lines(text, titles=["Library hours under review | Example News"], author="Jane Doe; John Roe")
    assert cleaned.splitlines() == [
        "The committee met on Tuesday to review the results of the spring survey.",
        "Officials said they would subscribe to a new booking system next year.",
        "Residents will be consulted in July.",
    ]


def test_clean_lines_keeps_a_lede_that_resembles_the_title():
    text = "James Smith has been elected mayor of Port Alder.\nHe takes office in May."
    assert clean_lines(text, titles=["James Smith elected mayor of Port Alder"]) == text


def test_content_hash_ignores_case_and_whitespace_only():
    a = content_hash("The  committee met.\nOfficials said.")
    assert a == content_hash("the committee met. officials said.  ")
    assert a != content_hash("The committee met. Officials said no.")
    expected = hashlib.sha256(b"the committee met. officials said.").hexdigest()
    assert a == expected


def test_count_words():
    assert count_words("The committee met on Tuesday.") == 5
    assert count_words("委員会は火曜日") == 7  # a CJK character is a word
    assert count_words("") == 0


# --- optional: quality on the shared dev set -------------------------------------------------

DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "extraction-dev"  # ../shared beside the checkout


def test_dev_set_f1_above_floor():
    if not (DEV / "ground-truth.json").is_file():
        pytest.skip(f"extraction-dev data not present at {DEV}")
    spec = importlib.util.spec_from_file_location("extraction_eval", ROOT / "bench" / "extraction_eval.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up while being defined
    try:
        spec.loader.exec_module(bench)
    finally:
        del sys.modules[spec.name]
    pages = bench.load_pages(DEV)
    preds, _ = bench.run_system(bench.ours, pages)
    assert bench.evaluate(pages, preds)["all"]["f1"] > 0.95
