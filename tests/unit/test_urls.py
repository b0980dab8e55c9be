import pytest

from pipeline.urls import canonical_url, is_tracking_param


@pytest.mark.parametrize(("raw", "expected"), [
    ("HTTP://Example.COM:80/a/B?utm_source=rss&utm_medium=feed", "http://example.com/a/B"),
    ("https://example.com:443/x?b=2&a=1#comments", "https://example.com/x?a=1&b=2"),
    ("https://example.com/story?id=42&fbclid=abc&gclid=z", "https://example.com/story?id=42"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("https://example.com//a//b", "https://example.com/a/b"),
    ("https://example.com/caf%C3%A9", "https://example.com/caf%C3%A9"),
    ("https://example.com/café", "https://example.com/caf%C3%A9"),
    ("https://bücher.example/a", "https://xn--bcher-kva.example/a"),
])
def test_canonical_url(raw, expected):
    assert canonical_url(raw) == expected


def test_relative_links_resolve_against_the_feed():
    assert canonical_url("/world/2019/10/story.html?utm_campaign=x", base="https://news.example/rss/world.xml") == \
        "https://news.example/world/2019/10/story.html"
    assert canonical_url("story.html", base="https://news.example/rss/") == "https://news.example/rss/story.html"


@pytest.mark.parametrize("bad", ["", "mailto:a@b.c", "javascript:alert(1)", "ftp://x/y", "http://"])
def test_non_http_urls_are_refused(bad):
    with pytest.raises(ValueError):
        canonical_url(bad)


def test_tracking_params():
    assert is_tracking_param("utm_source") and is_tracking_param("UTM_Medium") and is_tracking_param("fbclid")
    assert not is_tracking_param("id") and not is_tracking_param("page")
