"""Feed lists as files: OPML as feed readers export it (and as strangers write it), our YAML,
and both written back."""

from pathlib import Path

import pytest

from pipeline import feedlists
from pipeline.errors import UserInputError
from pipeline.feedlists import FeedListError, parse_opml, read_feed_list, to_opml, to_yaml
from pipeline.feeds import feed_spec
from pipeline.records import FeedSpec

# As Feedly, Inoreader and NetNewsWire export (folders as outlines, OPML 1.0 or 2.0).
OPML_1 = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="Middle East" title="Middle East">
      <outline type="rss" text="BBC Middle East" title="BBC Middle East"
               xmlUrl="https://feeds.bbci.co.uk/news/world/middle_east/rss.xml" htmlUrl="https://www.bbc.co.uk/news"/>
      <outline text="Syria">
        <outline type="rss" text="Guardian Syria" xmlUrl="https://www.theguardian.com/world/syria/rss?utm_source=x"/>
      </outline>
    </outline>
    <outline type="rss" text="No folder" xmlurl="http://example.org/feed.xml"/>
    <outline text="A folder with no feeds"/>
  </body>
</opml>"""

OPML_2 = """<?xml version="1.0" encoding="ISO-8859-1"?>
<opml version="2.0"><head><title>x</title></head><body>
<outline text="Le Monde \xe9dition" type="rss" xmlUrl="https://www.lemonde.fr/rss/une.xml" category="/france,/news/world"/>
</body></opml>""".encode("latin-1")


def test_opml_1_folders_become_tags_and_urls_are_canonical():
    specs = parse_opml(OPML_1)
    assert [(s.name, s.url, s.tags) for s in specs] == [
        ("BBC Middle East", "https://feeds.bbci.co.uk/news/world/middle_east/rss.xml", ("Middle East",)),
        ("Guardian Syria", "https://www.theguardian.com/world/syria/rss", ("Middle East", "Syria")),
        ("No folder", "http://example.org/feed.xml", ()),
    ]


def test_opml_2_category_and_declared_encoding():
    [spec] = parse_opml(OPML_2)
    assert spec.name == "Le Monde édition" and spec.tags == ("france", "news", "world")


def test_round_trips_through_opml_and_yaml(tmp_path):
    specs = [FeedSpec(url="https://a.example/rss", name="A & <B>", tags=("syria", "uk, world")),
             FeedSpec(url="https://b.example/atom", name="B", poll_interval=7200, outlet="B News")]
    opml = tmp_path / "out.opml"
    opml.write_bytes(to_opml(specs))
    back = read_feed_list(opml)
    assert [(s.url, s.name, s.tags) for s in back] == [
        ("https://a.example/rss", "A & <B>", ("syria", "uk world")), ("https://b.example/atom", "B", ())]
    yml = tmp_path / "out.yaml"
    yml.write_text(to_yaml(specs))
    assert read_feed_list(yml) == [
        FeedSpec(url="https://a.example/rss", name="A & <B>", tags=("syria", "uk", "world")), specs[1]]


def test_repeated_urls_keep_the_first(tmp_path):
    doc = (b'<opml version="2.0"><body><outline text="one" xmlUrl="http://a.example/f"/>'
           b'<outline text="two" xmlUrl="http://a.example/f#x"/></body></opml>')
    path = tmp_path / "f.opml"
    path.write_bytes(doc)
    assert [s.name for s in read_feed_list(path)] == ["one"]


# --- hostile files: one line naming the file, nothing half-read ------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><body><outline text="&xxe;" xmlUrl="http://a.example/f"/></body></opml>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<opml version="2.0"><body><outline text="&lol4;" xmlUrl="http://a.example/f"/></body></opml>"""


@pytest.mark.parametrize(("doc", "says"), [
    (XXE, "DOCTYPE"),
    (LAUGHS, "DOCTYPE"),
    (b"<opml><body><outline text='x' xmlUrl='http://a.example/f'></body>", "not well-formed"),
    (b"<html><body><p>Sign in</p></body></html>", "<html>, not <opml>"),
    (b"<opml version='2.0'><head/></opml>", "no <body>"),
    (b"<opml><body><outline text='x' xmlUrl='javascript:alert(1)'/></body></opml>", "line 1"),
    (b"<opml><body><outline text='x' xmlUrl='http://exa mple.com:99999/'/></body></opml>", "feed URL"),
    ('<?xml version="1.0" encoding="utf-8"?><opml><body><outline text="\xe9" xmlUrl="http://a.example/"/>'
     '</body></opml>'.encode("latin-1"), "not well-formed"),
    (b'<?xml version="1.0" encoding="x-no-such"?><opml><body/></opml>', "opml"),
    (b"<opml><body>" + b"<outline text='d'>" * 60 + b"</outline>" * 60 + b"</body></opml>", "nested deeper"),
], ids=["xxe", "billion-laughs", "unclosed", "html-login-page", "no-body", "javascript-url", "bad-port",
        "lying-encoding", "unknown-encoding", "too-deep"])
def test_hostile_opml_is_one_clear_error(doc, says, tmp_path):
    path = tmp_path / "subscriptions.opml"
    path.write_bytes(doc)
    with pytest.raises(FeedListError) as err:
        read_feed_list(path)
    message = str(err.value)
    assert says.lower() in message.lower() and str(path) in message and "\n" not in message
    assert "root:" not in message  # /etc/passwd never read


def test_too_big_and_too_many(tmp_path, monkeypatch):
    path = tmp_path / "big.opml"
    path.write_bytes(b"<opml><body>" + b" " * (feedlists.MAX_FILE_BYTES + 1) + b"</body></opml>")
    with pytest.raises(FeedListError, match="larger than"):
        read_feed_list(path)
    monkeypatch.setattr(feedlists, "MAX_FEEDS", 3)
    many = b"".join(b"<outline text='f' xmlUrl='http://a.example/%d'/>" % i for i in range(4))
    with pytest.raises(FeedListError, match="more than 3 feeds"):
        parse_opml(b"<opml><body>" + many + b"</body></opml>")


def test_missing_file_and_malformed_yaml(tmp_path):
    with pytest.raises(FeedListError, match="cannot read"):
        read_feed_list(tmp_path / "nope.opml")
    bad = tmp_path / "feeds.yaml"
    bad.write_text("feeds:\n  - name: no url\n")
    with pytest.raises(FeedListError) as err:
        read_feed_list(bad)
    assert "needs a 'url'" in str(err.value) and "feeds import" in str(err.value)
    assert "NEWSROOM_FEEDS" not in str(err.value)


def test_feed_spec_from_the_command_line():
    spec = feed_spec(" HTTPS://Example.org/rss?utm_medium=x ", name="  Ex  ample ", tags="a, b,a", interval="2h",
                     outlet="Example News")
    assert spec == FeedSpec(url="https://example.org/rss", name="Ex ample", tags=("a", "b"), poll_interval=7200,
                            outlet="Example News")
    assert feed_spec("http://a.example/f").name == "http://a.example/f"
    for bad, kwargs, says in [("ftp://a.example/f", {}, "not a feed URL"), ("http://a.example/f", {"interval": "5s"},
                              "--interval"), ("http://a.example/f", {"tags": "x" * 200}, "--tags")]:
        with pytest.raises(UserInputError, match=says):
            feed_spec(bad, **kwargs)


def test_yaml_outlet_is_read(tmp_path):
    path = Path(tmp_path / "f.yaml")
    path.write_text("feeds:\n  - url: http://a.example/f\n    outlet: A Daily\n")
    assert read_feed_list(path)[0].outlet == "A Daily"


def test_opml_export_carries_no_character_xml_cannot(tmp_path):
    path = tmp_path / "out.opml"
    path.write_bytes(to_opml([FeedSpec(url="http://a.example/f", name="A\x01B\x0c", tags=("x\x02",))]))
    [back] = read_feed_list(path)
    assert back.name == "A\ufffdB\ufffd" and back.tags == ("x\ufffd",)
