"""A feed is written by a stranger: parse_feed takes bytes only as a stream, caps what one
feed may put in the database, and turns every malformed input into a FeedError."""

import pytest

from pipeline import feeds
from pipeline.feeds import FeedError, parse_feed

URL = "http://news.example/feed.xml"


def _rss(items: str, pre: bytes = b'<?xml version="1.0" encoding="utf-8"?>') -> bytes:
    return pre + b'<rss version="2.0"><channel><title>t</title>' + items.encode() + b"</channel></rss>"


def _item(title="ok", link="http://news.example/1", extra="") -> str:
    return f"<item><title>{title}</title><link>{link}</link>{extra}</item>"


@pytest.mark.parametrize("ref", ["&#99999999;", "&#55296;", "&#xD800;", "&#xdfff;", "&#0;", "&#x110000;",
                                 "&#" + "9" * 40 + ";"])
def test_character_references_outside_unicode_do_not_stop_the_feed(ref):
    parsed = parse_feed(_rss(_item(f"bad {ref} title") + _item("fine", "http://news.example/2")), feed_url=URL)
    assert [e.url for e in parsed.entries] == ["http://news.example/1", "http://news.example/2"]
    assert all("\x00" not in e.title and not any(0xD800 <= ord(c) <= 0xDFFF for c in e.title)
               for e in parsed.entries)


def test_a_body_naming_a_local_file_is_never_opened(tmp_path):
    local = tmp_path / "secret.xml"
    local.write_bytes(_rss(_item("from the local disk", "http://news.example/leaked")))
    for body in (str(local).encode(), b"/etc/hostname", b"/etc/passwd\n", f"file://{local}".encode()):
        try:
            parsed = parse_feed(body, feed_url=URL)
        except FeedError:
            continue
        assert not parsed.entries, body


def test_a_flat_entity_repeated_many_times_is_refused():
    body = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "' + b"x" * 10_000 + b'">]>'
            + _rss(_item("&a;" * 200), pre=b""))
    with pytest.raises(FeedError) as info:
        parse_feed(body, feed_url=URL)
    assert info.value.error_class == "entity_expansion"


def test_nested_entities_are_refused():
    decls = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    body = f'<?xml version="1.0"?><!DOCTYPE rss [{decls}]>'.encode() + _rss(_item("&a9;"), pre=b"")
    with pytest.raises(FeedError) as info:
        parse_feed(body, feed_url=URL)
    assert info.value.error_class == "entity_expansion"


def test_small_entities_are_fine():
    body = b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY nbsp "&#160;">]>' + _rss(_item("a&nbsp;b"), pre=b"")
    assert parse_feed(body, feed_url=URL).entries[0].title == "a b"  # (whitespace is collapsed)


def test_what_one_feed_may_store_is_capped():
    authors = "".join(f"<author>writer{i}@x.example (Writer {i})</author>" for i in range(10_000))
    guid = "<guid isPermaLink='false'>" + "ğ" * 3000 + "</guid>"
    parsed = parse_feed(_rss(_item("T" * 1_000_000, extra="<description>" + "S " * 500_000 + "</description>"
                                   + authors + guid)), feed_url=URL)
    [e] = parsed.entries
    assert len(e.title) == feeds.MAX_TITLE_CHARS and len(e.summary) <= feeds.MAX_SUMMARY_CHARS
    assert len(e.authors) <= feeds.MAX_AUTHORS and all(len(a) <= feeds.MAX_AUTHOR_CHARS for a in e.authors)
    assert len(e.guid.encode()) <= feeds.MAX_GUID_BYTES


def test_nul_bytes_in_titles_are_stripped():
    [e] = parse_feed(_rss(_item("Idlib\x00 shelling")), feed_url=URL).entries
    assert e.title == "Idlib shelling"


@pytest.mark.parametrize("link", ["http://" + "a" * 70 + ".example/x", "http://a..b.example/x", "http://a b.example/",
                                  "http://x.example:99999/", "http://[::1/x", "javascript:alert(1)",
                                  "file:///etc/passwd", "ftp://x.example/f", "http://x.example/" + "p" * 5000])
def test_entries_that_can_never_be_fetched_are_skipped(link):
    parsed = parse_feed(_rss(_item("bad", link) + _item("good", "http://news.example/2")), feed_url=URL)
    assert [e.url for e in parsed.entries] == ["http://news.example/2"] and parsed.skipped == 1


@pytest.mark.parametrize("body", [b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, b"<rss version='2.0'><channel><item><ti",
                                  b"\xff\xfe<\x00r\x00s\x00s\x00", b"<?xml version='1.0' encoding='made-up'?><rss/>",
                                  "<rss><channel><item><title>caf\xe9</title></item></channel></rss>".encode("latin-1")])
def test_garbage_is_a_feed_error_or_a_feed(body):
    try:
        parse_feed(body, feed_url=URL)
    except FeedError as exc:
        assert exc.error_class in ("not_a_feed", "parse_error")


def test_padding_before_the_dtd_does_not_hide_the_entities():
    padding = b"<!--" + b" " * 1_200_000 + b"-->"
    body = (b'<?xml version="1.0"?>' + padding + b'<!DOCTYPE rss [<!ENTITY a "' + b"x" * 10_000 + b'">]>'
            + _rss(_item("&a;" * 200), pre=b""))
    with pytest.raises(FeedError) as info:
        parse_feed(body, feed_url=URL)
    assert info.value.error_class == "entity_expansion"
