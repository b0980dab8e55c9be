"""Sitemaps are written by strangers: parse_sitemap reads the formats sites publish (sitemaps,
indexes, Google News sitemaps, gzip, plain text, feeds), tells them apart by their bytes, and
turns every hostile or malformed document into a SitemapError, quickly and in bounded memory."""

import codecs
import gzip
import time
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from pipeline import sitemaps
from pipeline.records import ListedArticle
from pipeline.sitemaps import (
    ChildSitemap,
    DateRange,
    Frontier,
    Listing,
    ParsedSitemap,
    Problem,
    SitemapError,
    SitemapKind,
    Skip,
    parse_sitemap,
    parse_url_list,
    parse_w3c_date,
)

URL = "https://news.example/sitemap.xml"
MAX = 10 * 1024 * 1024
NOW = datetime(2026, 12, 1, tzinfo=UTC)
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS_NS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'


def _urlset(*urls: str, decl: str = '<?xml version="1.0" encoding="UTF-8"?>', ns: str = NS) -> bytes:
    return f"{decl}<urlset {ns} {NEWS_NS}>{''.join(urls)}</urlset>".encode()


def _url(loc: str, extra: str = "") -> str:
    return f"<url><loc>{loc}</loc>{extra}</url>"


def _parse(body: bytes, **kw) -> ParsedSitemap:
    return parse_sitemap(body, url=kw.pop("url", URL), max_bytes=kw.pop("max_bytes", MAX), now=NOW, **kw)


def _refused(body: bytes, problem: Problem, **kw) -> SitemapError:
    with pytest.raises(SitemapError) as info:
        _parse(body, **kw)
    assert info.value.problem is problem, info.value
    return info.value


# --- the formats ----------------------------------------------------------------------------

def test_a_sitemap_lists_canonical_urls_with_lastmod():
    parsed = _parse(_urlset(_url("https://news.example/a?utm_source=x&amp;id=2", "<lastmod>2019-10-01</lastmod>"),
                            _url("  https://News.Example:443/b  ", "<lastmod>2019-10-02T10:00:00+02:00</lastmod>"),
                            _url("/relative/c")))
    assert parsed.kind is SitemapKind.URLSET
    assert [a.url for a in parsed.articles] == ["https://news.example/a?id=2", "https://news.example/b",
                                                "https://news.example/relative/c"]
    assert parsed.articles[0].listed_url == "https://news.example/a?utm_source=x&id=2"  # requested as listed
    assert parsed.articles[0].lastmod == datetime(2019, 10, 1, tzinfo=UTC)
    assert parsed.articles[1].lastmod == datetime(2019, 10, 2, 8, tzinfo=UTC)
    assert parsed.articles[0].published is None  # lastmod is never a publication time
    assert parsed.listed == 3 and not parsed.skipped


def test_an_index_lists_child_sitemaps():
    body = (f'<?xml version="1.0"?><sitemapindex {NS}>'
            "<sitemap><loc>https://news.example/s1.xml</loc><lastmod>2019-10-01</lastmod></sitemap>"
            "<sitemap><loc>/s2.xml.gz</loc></sitemap>"
            "<sitemap><loc>javascript:alert(1)</loc></sitemap>"
            "<sitemap><lastmod>2019-10-01</lastmod></sitemap>"
            "</sitemapindex>").encode()
    parsed = _parse(body)
    assert parsed.kind is SitemapKind.INDEX and not parsed.articles
    assert parsed.sitemaps == (ChildSitemap("https://news.example/s1.xml", datetime(2019, 10, 1, tzinfo=UTC)),
                               ChildSitemap("https://news.example/s2.xml.gz", None))
    assert parsed.skipped == {Skip.INVALID_URL: 2}


def test_a_google_news_sitemap_gives_publication_time_title_and_language():
    news = ("<news:news><news:publication><news:name>Example</news:name><news:language>EN_gb</news:language>"
            "</news:publication><news:publication_date>2019-10-01T12:30:00+02:00</news:publication_date>"
            "<news:title>  Turkey  <![CDATA[& Syria]]> talks </news:title></news:news>")
    bad = ("<news:news><news:publication><news:language>not a language</news:language></news:publication>"
           "<news:publication_date>2999-01-01</news:publication_date><news:title>" + "x" * 5000
           + "</news:title></news:news>")
    parsed = _parse(_urlset(_url("https://news.example/a", news), _url("https://news.example/b", bad)))
    a, b = parsed.articles
    assert (a.published, a.title, a.language) == (datetime(2019, 10, 1, 10, 30, tzinfo=UTC), "Turkey & Syria talks",
                                                   "en-gb")
    assert b.published is None and b.language is None  # a date in 2999 is no publication time
    assert len(b.title) == sitemaps.MAX_TITLE_CHARS


def test_gzip_is_told_by_its_bytes_not_the_name():
    body = _urlset(_url("https://news.example/a"))
    for url in (URL, "https://news.example/sitemap.txt", "https://news.example/s.xml.gz"):
        assert [a.url for a in _parse(gzip.compress(body), url=url).articles] == ["https://news.example/a"]
    # and a .gz name on plain bytes is read as they are
    assert _parse(body, url="https://news.example/s.xml.gz").articles


def test_gzip_with_several_members_and_trailing_padding():
    body = _urlset(_url("https://news.example/a"), _url("https://news.example/b"))
    half = len(body) // 2
    assert len(_parse(gzip.compress(body[:half]) + gzip.compress(body[half:]) + b"\x00" * 8).articles) == 2


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_broken_gzip_fails_cleanly(damage):
    data = gzip.compress(_urlset(*[_url(f"https://news.example/{i}") for i in range(500)]))
    data = data[: len(data) // 2] if damage == "truncated" else data[:20] + b"\xff" * 40 + data[60:]
    _refused(data, Problem.BAD_ENCODING)


def test_a_gzip_bomb_stops_at_the_cap_quickly():
    bomb = gzip.compress(b"<urlset>" + b" " * (64 * 1024 * 1024), compresslevel=9)  # 64 MB in ~64 KB
    t0 = time.monotonic()
    error = _refused(bomb, Problem.TOO_LARGE, max_bytes=1024 * 1024)
    assert time.monotonic() - t0 < 2
    assert "more than 1,048,576 bytes" in str(error)


def test_gzip_inside_gzip_is_refused():
    _refused(gzip.compress(gzip.compress(_urlset(_url("https://news.example/a")))), Problem.NOT_A_SITEMAP)


def test_a_plain_text_sitemap():
    body = b"\xef\xbb\xbfhttps://news.example/a\r\n\n  https://news.example/b  \n# a comment\nftp://news.example/c\n"
    parsed = _parse(body, url="https://news.example/sitemap.txt")
    assert parsed.kind is SitemapKind.TEXT
    assert [a.url for a in parsed.articles] == ["https://news.example/a", "https://news.example/b"]
    assert parsed.skipped == {Skip.INVALID_URL: 1} and parsed.invalid == ("ftp://news.example/c",)


@pytest.mark.parametrize("body", [b"hello world\nthis is not a list", b'{"urls": ["https://news.example/a"]}',
                                  b"/a.html\n/b.html"])
def test_text_that_lists_no_absolute_url_is_not_a_sitemap(body):
    _refused(body, Problem.NOT_A_SITEMAP)


def test_binary_data_is_not_a_sitemap():
    _refused(bytes(range(256)) * 40, Problem.NOT_A_SITEMAP)
    _refused(b"\x89PNG\r\n\x1a\n" + b"\x00" * 400, Problem.NOT_A_SITEMAP)


def test_an_rss_feed_given_as_a_sitemap_lists_its_links():
    rss = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
           b"<item><title>A</title><link>https://news.example/a</link>"
           b"<pubDate>Tue, 01 Oct 2019 12:00:00 +0000</pubDate></item></channel></rss>")
    parsed = _parse(rss)
    assert parsed.kind is SitemapKind.FEED
    assert [(a.url, a.title, a.published) for a in parsed.articles] == [
        ("https://news.example/a", "A", datetime(2019, 10, 1, 12, tzinfo=UTC))]


# --- hostile documents ----------------------------------------------------------------------

def test_an_external_entity_is_refused_and_the_file_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    for decl in (f'<!ENTITY x SYSTEM "file://{secret}">', f'<!ENTITY % x SYSTEM "file://{secret}"> %x;'):
        body = (f'<?xml version="1.0"?><!DOCTYPE urlset [{decl}]>'.encode()
                + _urlset(_url("https://news.example/&x;"), decl=""))
        error = _refused(body, Problem.ENTITY_EXPANSION)
        assert "TOP-SECRET" not in str(error)


def test_billion_laughs_is_refused_at_once():
    decls = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    body = f'<?xml version="1.0"?><!DOCTYPE urlset [{decls}]>'.encode() + _urlset(_url("https://x.example/&a9;"),
                                                                                  decl="")
    t0 = time.monotonic()
    _refused(body, Problem.ENTITY_EXPANSION)
    assert time.monotonic() - t0 < 1


def test_an_external_dtd_is_never_fetched(site):
    dtd = site.add("/evil.dtd", '<!ENTITY x "pwned">', content_type="application/xml-dtd")
    body = f'<?xml version="1.0"?><!DOCTYPE urlset SYSTEM "{dtd}">'.encode() + _urlset(
        _url("https://news.example/a"), decl="")
    assert [a.url for a in _parse(body).articles] == ["https://news.example/a"]
    assert site.requests == []


def test_sixty_thousand_urls_take_the_protocol_limit():
    body = _urlset(*[_url(f"https://news.example/{i}") for i in range(60_000)])
    t0 = time.monotonic()
    parsed = _parse(body)
    seconds = time.monotonic() - t0
    assert len(parsed.articles) == sitemaps.MAX_URLS_PER_SITEMAP
    assert parsed.skipped == {Skip.OVER_LIMIT: 10_000} and parsed.listed == 60_000
    assert seconds < 90, seconds  # ~10 s on a quiet machine: canonicalising each URL dominates


@pytest.mark.parametrize("body", [
    _urlset(_url("https://news.example/a"))[:-20],  # cut short
    b'<?xml version="1.0"?><urlset><url><loc>https://news.example/?a=1&b=2</loc></url></urlset>',  # bare &
    b"<urlset><url><loc>https://news.example/a</loc></urlset>",  # unclosed element
    b"<urlset>" + b"<x>" * 300 + b"</x>" * 300 + b"</urlset>",  # nested past the parser's depth limit
    b"<urlset><url><loc>https://news.example/\x00</loc></url></urlset>",  # NUL is not XML
])
def test_malformed_xml_is_a_parse_error(body):
    _refused(body, Problem.PARSE_ERROR)


def test_an_html_page_served_as_a_sitemap():
    for page in (b"<!DOCTYPE html><html><head><title>404</title></head><body>Not found</body></html>",
                 b"<!-- cdn --><html><body><p>Error<br></body></html>",
                 b"\n\n   <HTML><BODY>Moved</BODY></HTML>"):
        assert "HTML" in str(_refused(page, Problem.NOT_A_SITEMAP))
    xhtml = b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body/></html>'
    _refused(xhtml, Problem.NOT_A_SITEMAP)


def test_comment_padding_before_html_does_not_take_long():
    t0 = time.monotonic()
    with pytest.raises(SitemapError):
        _parse(b"<!---->" * 200_000 + b"<p>")
    assert time.monotonic() - t0 < 5


def test_a_stylesheet_comments_and_a_doctype_before_the_root_are_fine():
    body = (b'<?xml version="1.0" encoding="UTF-8"?><?xml-stylesheet type="text/xsl" href="//news.example/s.xsl"?>'
            b'<!-- generated by a plugin --><!DOCTYPE urlset>') + _urlset(
        "<!-- first --><url><!-- x --><loc>https://news.example/<!-- y -->a</loc></url>", decl="")
    assert [a.url for a in _parse(body).articles] == ["https://news.example/a"]


def test_the_namespace_may_be_missing_or_wrong_but_not_the_root():
    for ns in ("", 'xmlns="http://www.google.com/schemas/sitemap/0.84"', 'xmlns="urn:nonsense"'):
        assert len(_parse(_urlset(_url("https://news.example/a"), ns=ns)).articles) == 1
    error = _refused(b'<?xml version="1.0"?><catalog><url><loc>https://news.example/a</loc></url></catalog>',
                     Problem.NOT_A_SITEMAP)
    assert "<catalog>" in str(error)


def test_empty_documents():
    for body in (b"", b"   \n\t", b'<?xml version="1.0"?>'):
        with pytest.raises(SitemapError):
            _parse(body)


def test_urls_that_cannot_be_fetched_are_skipped_and_counted():
    bad = ["javascript:alert(1)", "file:///etc/passwd", "ftp://news.example/a", "http://exa mple.com/a",
           "http://" + "a" * 70 + ".example/", "https://news.example/" + "x" * 3000, "", "http://[::1/",
           "mailto:a@news.example"]
    parsed = _parse(_urlset(*[_url(u) for u in bad], _url("https://news.example/ok")))
    assert [a.url for a in parsed.articles] == ["https://news.example/ok"]
    assert parsed.skipped == {Skip.INVALID_URL: len(bad)}
    assert len(parsed.invalid) == 5


def test_control_characters_in_a_location_never_reach_the_url():
    parsed = _parse(_urlset(_url("https://news.example/a\tb\nc\u202ed\u0085e")))
    assert all(ord(c) > 32 and c not in "\u202e\u0085" for c in parsed.articles[0].url)


# --- encodings ------------------------------------------------------------------------------

DOC = _url("https://news.example/caf\u00e9", "<news:news><news:title>Caf\u00e9 \u2013 na\u00efve</news:title></news:news>")


@pytest.mark.parametrize(("name", "body"), [
    ("utf-8 with a BOM and a utf-16 declaration", codecs.BOM_UTF8 + _urlset(DOC, decl='<?xml version="1.0" encoding="utf-16"?>')),
    ("utf-16 with its BOM", ('<?xml version="1.0" encoding="utf-16"?>' + _urlset(DOC, decl="").decode()).encode("utf-16")),
    ("utf-8 declared latin-1", _urlset(DOC, decl='<?xml version="1.0" encoding="iso-8859-1"?>')),
    ("utf-8 declaring an unknown encoding", _urlset(DOC, decl='<?xml version="1.0" encoding="x-bogus"?>')),
    ("utf-8 declaring utf-16 without a BOM", _urlset(DOC, decl='<?xml version="1.0" encoding="utf-16"?>')),
    ("blank lines before the declaration", b"\r\n\n  " + _urlset(DOC)),
    ("windows-1252 declared", _urlset(DOC, decl='<?xml version="1.0" encoding="windows-1252"?>').decode().encode("cp1252")),
])
def test_odd_encodings_and_declarations(name, body):
    [a] = _parse(body).articles
    assert a.url == "https://news.example/caf%C3%A9", name
    assert a.title == "Caf\u00e9 \u2013 na\u00efve", name


def test_undeclared_latin_1_is_read_as_windows_1252():
    [a] = _parse(_urlset(DOC, decl="").decode().encode("cp1252")).articles
    assert a.title == "Caf\u00e9 \u2013 na\u00efve"


def test_a_declaration_naming_a_non_text_codec_is_ignored():
    body = _urlset(_url("https://news.example/\u00e9"), decl='<?xml version="1.0" encoding="rot13"?>').decode()
    assert _parse(body.encode("cp1252")).articles[0].url == "https://news.example/%C3%A9"


# --- dates ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("2019", datetime(2019, 1, 1, tzinfo=UTC)),
    ("2019-10", datetime(2019, 10, 1, tzinfo=UTC)),
    ("2019-10-01", datetime(2019, 10, 1, tzinfo=UTC)),
    ("2019-10-01T12:30+02:00", datetime(2019, 10, 1, 10, 30, tzinfo=UTC)),
    ("2019-10-01T12:30:15.123456789Z", datetime(2019, 10, 1, 12, 30, 15, tzinfo=UTC)),
    ("2019-10-01 12:30:15 -0500", datetime(2019, 10, 1, 17, 30, 15, tzinfo=UTC)),
    (" 2019-10-01T12:30:15 ", datetime(2019, 10, 1, 12, 30, 15, tzinfo=UTC)),
    ("2019-13-01", None), ("2019-02-30", None), ("2019-10-01T25:00Z", None), ("2019-10-01T10:00+25:00", None),
    ("yesterday", None), ("", None), (None, None), ("9" * 100, None), ("Tue, 01 Oct 2019 12:00:00 GMT", None),
])
def test_w3c_dates(text, expected):
    assert parse_w3c_date(text) == expected


# --- one backfill: dates, duplicates, caps, loops -------------------------------------------

def _listed(url: str, *, lastmod=None, published=None) -> ListedArticle:
    return ListedArticle(url=url, listed_url=url, lastmod=lastmod, published=published)


def test_a_listing_filters_by_date_dedups_and_caps():
    d = lambda day: datetime(2019, 10, day, tzinfo=UTC)  # noqa: E731
    listing = Listing(limit=2, dates=DateRange(d(2), d(5)))
    listing.add(ParsedSitemap(kind=SitemapKind.URLSET, skipped={Skip.INVALID_URL: 1}, articles=(
        _listed("https://x.example/1", lastmod=d(1)),  # too early
        _listed("https://x.example/2", lastmod=d(9), published=d(3)),  # publication date wins over lastmod
        _listed("https://x.example/3"),  # undated
        _listed("https://x.example/2", lastmod=d(3)),  # again
        _listed("https://x.example/4", lastmod=d(5)),  # `until` is excluded
        _listed("https://x.example/5", lastmod=d(4)),
        _listed("https://x.example/6", lastmod=d(2)),  # over the limit
    )))
    assert list(listing.articles) == ["https://x.example/2", "https://x.example/5"]
    assert listing.skipped == {Skip.OUTSIDE_DATES: 2, Skip.UNDATED: 1, Skip.DUPLICATE: 1, Skip.OVER_LIMIT: 1,
                               Skip.INVALID_URL: 1}
    assert listing.listed == 8 and listing.full


def test_an_article_listed_twice_keeps_the_hints_of_either_listing():
    plain = _listed("https://x.example/1", lastmod=datetime(2019, 10, 5, tzinfo=UTC))
    news = ListedArticle(url="https://x.example/1", listed_url="https://x.example/1?a", title="T", language="en",
                         published=datetime(2019, 10, 1, tzinfo=UTC))
    for first, second in ((plain, news), (news, plain)):
        listing = Listing(limit=10)
        for a in (first, second):
            listing.add(ParsedSitemap(kind=SitemapKind.URLSET, articles=(a,)))
        [a] = listing.articles.values()
        assert (a.title, a.language, a.published, a.lastmod) == ("T", "en", datetime(2019, 10, 1, tzinfo=UTC),
                                                                 datetime(2019, 10, 5, tzinfo=UTC))
        assert listing.skipped == {Skip.DUPLICATE: 1}


def test_without_dates_undated_urls_are_taken():
    listing = Listing(limit=10)
    listing.add(parse_url_list(["https://x.example/1", "https://x.example/1?utm_source=a", "# no", "", "nope"]))
    assert list(listing.articles) == ["https://x.example/1"]
    assert listing.skipped == {Skip.DUPLICATE: 1, Skip.INVALID_URL: 1}
    assert listing.invalid == ["nope"]


def test_a_sitemap_unchanged_since_before_the_range_is_not_read():
    dates = DateRange(datetime(2019, 10, 1, tzinfo=UTC), None)
    assert dates.rejects_sitemap(ChildSitemap("https://x.example/old.xml", datetime(2019, 9, 30, tzinfo=UTC)))
    assert not dates.rejects_sitemap(ChildSitemap("https://x.example/new.xml", datetime(2019, 10, 2, tzinfo=UTC)))
    assert not dates.rejects_sitemap(ChildSitemap("https://x.example/undated.xml"))
    assert not DateRange(None, datetime(2019, 1, 1, tzinfo=UTC)).rejects_sitemap(
        ChildSitemap("https://x.example/old.xml", datetime(2018, 1, 1, tzinfo=UTC)))


def test_the_frontier_stops_loops_depth_and_count():
    f = Frontier(max_depth=2, max_sitemaps=4)
    assert f.admit("https://x.example/index.xml", 0)
    assert not f.admit("https://X.example:443/index.xml#again", 1)  # the index lists itself
    assert f.admit("https://x.example/b.xml", 1)
    f.mark("https://x.example/b-moved.xml")  # b redirected there
    assert not f.admit("https://x.example/b-moved.xml", 2)
    assert not f.admit("https://x.example/index.xml", 2)  # b lists the index: A -> B -> A
    assert not f.admit("https://x.example/deep.xml", 3)
    assert f.admit("https://x.example/c.xml", 2)
    assert not f.admit("https://x.example/d.xml", 1)  # four read already
    assert f.skipped == {Skip.REPEATED: 3, Skip.TOO_DEEP: 1, Skip.TOO_MANY: 1}


def test_plausible_publication_times():
    assert sitemaps.plausible(datetime(1990, 1, 1, tzinfo=UTC), NOW) is None
    assert sitemaps.plausible(NOW + timedelta(days=2), NOW) is None
    assert sitemaps.plausible(NOW - timedelta(days=2), NOW) == NOW - timedelta(days=2)


def test_gunzip_alone():
    assert sitemaps.gunzip(gzip.compress(b"abc"), 3) == b"abc"
    with pytest.raises(SitemapError):
        sitemaps.gunzip(gzip.compress(b"abcd"), 3)
    with pytest.raises(SitemapError):
        sitemaps.gunzip(zlib.compress(b"abc"), 100)  # zlib, not gzip
