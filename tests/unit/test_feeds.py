"""The pure part of feeds: the feed list, parsing, failure classes, backoff, health."""

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline import feeds
from pipeline.config import PACKAGE_DATA
from pipeline.errors import ConfigError
from pipeline.feeds import FeedError, parse_feed

SHARED_FEEDS = Path(__file__).resolve().parents[3] / "shared" / "data" / "feeds-real"

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom &amp; Co</title>
  <entry>
    <id>tag:news.example,2019:1</id>
    <title type="html">Turkey &lt;em&gt;receives&lt;/em&gt; S-400</title>
    <link rel="alternate" href="/2019/07/12/s400.html?utm_source=atom"/>
    <updated>2019-07-12T09:30:00+03:00</updated>
    <author><name>Ayse Yilmaz</name></author>
    <author><name>John Smith</name></author>
    <summary type="html">&lt;p&gt;The first parts &lt;b&gt;arrived&lt;/b&gt;.&lt;/p&gt;</summary>
  </entry>
  <entry><title>No link and no id at all</title></entry>
</feed>"""


def test_parse_atom_entries_are_typed_and_resolved():
    parsed = parse_feed(ATOM, feed_url="https://news.example/feeds/atom.xml")
    assert parsed.title == "Atom & Co"
    assert parsed.skipped == 1
    [e] = parsed.entries
    assert e.url == "https://news.example/2019/07/12/s400.html"
    assert e.entry_url == "https://news.example/2019/07/12/s400.html?utm_source=atom"
    assert e.guid == "tag:news.example,2019:1"
    assert e.title == "Turkey receives S-400"
    assert e.summary == "The first parts arrived ."
    assert e.published == datetime(2019, 7, 12, 6, 30, tzinfo=UTC)
    assert e.authors == ("Ayse Yilmaz", "John Smith")


def test_parse_rss_with_duplicate_links_keeps_one():
    doc = b"""<rss version="2.0"><channel><title>T</title>
      <item><title>A</title><link>http://x.example/a</link><pubDate>Tue, 01 Oct 2019 12:00:00 GMT</pubDate></item>
      <item><title>A again</title><link>http://x.example/a#comments</link></item>
      <item><title>B</title><link>http://x.example/b</link><dc:creator xmlns:dc="http://purl.org/dc/elements/1.1/">Ann</dc:creator></item>
    </channel></rss>"""
    parsed = parse_feed(doc, feed_url="http://x.example/rss")
    assert [e.url for e in parsed.entries] == ["http://x.example/a", "http://x.example/b"]
    assert parsed.entries[0].published.tzinfo is not None
    assert parsed.entries[1].authors == ("Ann",)


@pytest.mark.parametrize(("body", "error_class"), [
    (b"", "not_a_feed"),
    (b"<!DOCTYPE html><html><head><title>News</title></head><body>hi</body></html>", "not_a_feed"),
    (b'{"items": []}', "not_a_feed"),
    (b"<rss version='2.0'><channel><title>broken<item><link>", "parse_error"),
])
def test_not_feeds_are_refused_with_a_class(body, error_class):
    with pytest.raises(FeedError) as info:
        parse_feed(body, feed_url="http://x.example/rss")
    assert info.value.error_class == error_class


def test_html_page_with_a_feed_link_says_so():
    page = b'<html><head><link rel="alternate" type="application/rss+xml" href="/rss"></head></html>'
    with pytest.raises(FeedError, match="advertises a feed"):
        parse_feed(page, feed_url="http://x.example/")


def test_entity_expansion_attack_does_not_blow_up():
    lol = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lolololololololololololololololololololololololol">
""" + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode() for i in range(1, 10)
    ) + b"""]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title><link>http://x.example/a</link></item></channel></rss>"""
    try:
        parsed = parse_feed(lol, feed_url="http://x.example/rss")
    except FeedError:
        return  # refusing is fine
    # or parsed without expanding: nothing near a billion characters
    assert all(len(e.title or "") < 100_000 for e in parsed.entries)


@pytest.mark.skipif(not SHARED_FEEDS.is_dir(), reason="shared captured feeds not present")
def test_real_captured_feeds_parse():
    files = sorted(p for p in SHARED_FEEDS.iterdir() if p.suffix in (".rss", ".atom", ".xml"))
    assert files
    total = 0
    for path in files:
        try:
            parsed = parse_feed(path.read_bytes(), feed_url=f"https://feeds.example/{path.name}")
        except FeedError as exc:
            assert exc.error_class in ("parse_error", "not_a_feed"), path.name
            continue
        for e in parsed.entries:
            assert e.url.startswith("http")
            assert e.published is None or e.published.tzinfo is not None
        total += len(parsed.entries)
    assert total > 50


def test_shipped_feed_list_loads():
    specs = feeds.load_feed_list(PACKAGE_DATA / "feeds.yaml")
    assert len(specs) >= 10
    assert all(s.url.startswith("https://") for s in specs)
    assert len({s.url for s in specs}) == len(specs)


@pytest.mark.parametrize(("text", "message"), [
    ("feeds: 3", "expected a list"),
    ("feeds:\n  - name: x", "needs a 'url'"),
    ("feeds:\n  - url: ftp://x/y", "not an http"),
    ("feeds:\n  - url: http://x.example/\n    colour: red", "unknown field"),
    ("feeds:\n  - url: http://x.example/\n    poll_interval: 5", "at least"),
    ("feeds:\n  - url: http://x.example/\n    poll_interval: soon", "not like"),
    ("feeds: [", "not valid YAML"),
])
def test_bad_feed_lists_name_the_problem(tmp_path, text, message):
    path = tmp_path / "feeds.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        feeds.load_feed_list(path)


def test_feed_list_forms(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text("- http://a.example/rss\n- url: http://b.example/rss\n  tags: world\n  poll_interval: 2h\n"
                    "- http://a.example/rss\n")
    a, b = feeds.load_feed_list(path)
    assert a.name == "http://a.example/rss" and b.tags == ("world",) and b.poll_interval == 7200


@pytest.mark.parametrize(("written", "tags"), [
    ("tags: world", ("world",)),
    ("tags: world, europe", ("world", "europe")),  # one string: comma-separated tags
    ("tags: ' world ,, europe , world ,'", ("world", "europe")),  # stripped, no empties or repeats
    ("tags: [world, europe]", ("world", "europe")),
    ("tags:\n      - world\n      - ' europe '\n      - world", ("world", "europe")),
    ("tags: ['world, europe', middle east]", ("world", "europe", "middle east")),  # an item may hold commas
    ("tags: 1945", ("1945",)),
    ("tags: [1945, world]", ("1945", "world")),
    ("tags: ''", ()), ("tags: ', ,'", ()), ("tags: []", ()), ("tags:", ()), ("tags: ~", ()),
    ("tags: Türkiye, 東京", ("Türkiye", "東京")),
])
def test_tags_as_a_string_or_a_list(tmp_path, written, tags):
    path = tmp_path / "feeds.yaml"
    path.write_text(f"feeds:\n  - url: http://a.example/rss\n    {written}\n", encoding="utf-8")
    (feed,) = feeds.load_feed_list(path)
    assert feed.tags == tags


@pytest.mark.parametrize(("written", "parts"), [
    ("tags: [[a]]", ["field 'tags[1]'", "string"]),
    ("tags: [world, {a: b}]", ["field 'tags", "string"]),
    ("tags: [true]", ["field 'tags", "string"]),
    ("tags: true", ["field 'tags'", "list"]),
    ("tags: {world: 1}", ["field 'tags'", "list"]),
    ("tags: " + "x" * 1_000_000, ["field 'tags'", "at most 100 characters", "1000000 characters"]),
    ("tags: [ok, " + "y" * 101 + "]", ["field 'tags'", "at most 100 characters"]),
    ("tags: " + ",".join(f"t{i}" for i in range(100_000)), ["field 'tags'", "at most 50 tags", "100000"]),
    ("tags: [" + ", ".join(f"t{i}" for i in range(51)) + "]", ["field 'tags'", "at most 50 tags"]),
])
def test_hostile_tags_are_one_error_naming_file_feed_and_field(tmp_path, written, parts):
    path = tmp_path / "feeds.yaml"
    path.write_text(f"feeds:\n  - url: http://a.example/rss\n  - url: http://b.example/rss\n    {written}\n")
    with pytest.raises(ConfigError) as info:
        feeds.load_feed_list(path)
    message = str(info.value)
    assert message.startswith(f"{path}: feed entry 2 ('http://b.example/rss'): ")
    assert "NEWSROOM_FEEDS" in message and "\n" not in message and len(message) < 1000
    for part in parts:
        assert part in message, (part, message)


def test_a_huge_string_of_repeated_tags_is_one_tag(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - url: http://a.example/rss\n    tags: " + "world, " * 200_000 + "\n")
    (feed,) = feeds.load_feed_list(path)
    assert feed.tags == ("world",)


def test_missing_feed_list_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="NEWSROOM_FEEDS"):
        feeds.load_feed_list(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("status", "expected"), [
    (404, ("http_4xx", False)), (410, ("http_410_gone", False)), (429, ("http_429", True)),
    (408, ("http_4xx", True)), (500, ("http_5xx", True)), (503, ("http_5xx", True)),
])
def test_classify_status(status, expected):
    assert feeds.classify_status(status) == expected


def test_retry_after_forms():
    now = datetime(2019, 10, 1, 12, 0, tzinfo=UTC)
    assert feeds.parse_retry_after("120") == 120
    assert feeds.parse_retry_after("Tue, 01 Oct 2019 13:00:00 GMT", now) == 3600
    assert feeds.parse_retry_after("soon") is None
    assert feeds.parse_retry_after(None) is None


def test_backoff_grows_is_jittered_and_capped():
    rng = random.Random(1)
    healthy = feeds.next_poll_delay(failures=0, interval=1800, rng=rng)
    assert 1440 <= healthy <= 2160
    delays = [feeds.next_poll_delay(failures=n, interval=1800, rng=random.Random(0)) for n in range(1, 12)]
    assert delays == sorted(delays)
    assert delays[-1] <= feeds.MAX_BACKOFF * 1.2
    # permanent failures start slower than transient ones
    assert feeds.next_poll_delay(failures=1, interval=60, transient=False, rng=random.Random(0)) > \
        feeds.next_poll_delay(failures=1, interval=60, transient=True, rng=random.Random(0))
    # Retry-After wins when longer, capped at a day
    assert feeds.next_poll_delay(failures=1, interval=60, retry_after=7200, rng=random.Random(0)) >= 7200 * 0.8
    assert feeds.next_poll_delay(failures=1, interval=60, retry_after=10**9, rng=random.Random(0)) <= 86400 * 1.2
    spread = {round(feeds.next_poll_delay(failures=3, interval=1800)) for _ in range(20)}
    assert len(spread) > 1  # jitter


def test_health_words():
    now = datetime(2019, 10, 30, tzinfo=UTC)
    base = {"enabled": True, "last_polled_at": now, "consecutive_failures": 0, "created_at": now - timedelta(days=30)}
    assert feeds.health({**base, "enabled": False}, now) == "disabled"
    assert feeds.health({**base, "last_polled_at": None}, now) == "new"
    assert feeds.health({**base, "consecutive_failures": 2}, now) == "failing"
    assert feeds.health({**base, "last_new_article_at": now - timedelta(days=1)}, now) == "ok"
    assert feeds.health({**base, "last_new_article_at": now - timedelta(days=20)}, now) == "silent"
    assert feeds.health({**base, "last_new_article_at": None}, now) == "silent"
    assert feeds.health({**base, "created_at": now - timedelta(hours=1)}, now) == "ok"
