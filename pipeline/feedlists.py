"""Feed lists as files, the pure part: read OPML (1.0 and 2.0, as feed readers export it) or our
YAML into feed specs, and write either from them. `newsroom feeds import/export` do the I/O.

An OPML file comes from another program, often from a stranger: it is parsed without DTDs,
entities or network, and with hard limits on its size and its number of feeds. Any problem is
one FeedListError naming the file and, where there is one, the line; nothing is half-read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from lxml import etree

from pipeline.config_files import load
from pipeline.errors import ConfigError, UserInputError
from pipeline.feeds import MAX_TAG_CHARS, MAX_TAGS, FeedsFile, parse_interval
from pipeline.records import FeedSpec
from pipeline.text import safe_text
from pipeline.urls import InvalidURL, canonical_url

MAX_FILE_BYTES = 20 * 1024 * 1024  # the biggest real exports are a few MB
MAX_FEEDS = 100_000
MAX_NAME_CHARS = 500
MAX_DEPTH = 50  # nested folders
_DOCTYPE = re.compile(rb"<!\s*DOCTYPE", re.IGNORECASE)


class FeedListError(UserInputError):
    """A feed list file that cannot be imported as a whole; the message names the file."""


def read_feed_list(path: Path) -> list[FeedSpec]:
    """The feeds of an OPML or YAML file, told apart by their content, not their name. Repeats of
    one URL keep the first entry."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise FeedListError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise FeedListError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; not a feed list")
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<"):
        specs = parse_opml(data, source=str(path))
    else:
        specs = _yaml_specs(path)
    return _first_of_each(specs)


def _yaml_specs(path: Path) -> list[FeedSpec]:
    try:
        _, parsed = load(path, FeedsFile, setting="the file given to `newsroom feeds import`")
    except ConfigError as exc:
        raise FeedListError(str(exc)) from None
    return [FeedSpec(url=f.url, name=f.name or f.url, tags=tuple(f.tags), poll_interval=f.poll_interval,
                     outlet=f.outlet) for f in parsed.feeds]


def _first_of_each(specs: Iterable[FeedSpec]) -> list[FeedSpec]:
    out: dict[str, FeedSpec] = {}
    for s in specs:
        out.setdefault(s.url, s)
    return list(out.values())


# --- OPML -----------------------------------------------------------------------------------

def _parser() -> etree.XMLParser:
    # No DTD, no entity expansion (billion laughs), no network (XXE), no huge-tree mode.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def parse_opml(data: bytes, *, source: str = "the OPML file") -> list[FeedSpec]:
    """Every outline with an `xmlUrl` is a feed: its `title` or `text` is its name, the folders
    it sits in and its `category` attribute (OPML 2.0: "/a/b,c") are its tags."""
    if _DOCTYPE.search(data[:65536]):  # checked first: the parser's own message would name an entity
        raise FeedListError(f"{source}: has a DOCTYPE; OPML needs none, and its entities are not read")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise FeedListError(f"{source}: not well-formed XML ({_one_line(exc)}); not an OPML file") from None
    except ValueError as exc:  # e.g. an encoding declaration lxml refuses
        raise FeedListError(f"{source}: unreadable XML ({_one_line(exc)})") from None
    doc = root.getroottree().docinfo
    if doc.internalDTD is not None or doc.doctype:
        raise FeedListError(f"{source}: has a DOCTYPE; OPML needs none, and its entities are not read")
    if not isinstance(root.tag, str) or etree.QName(root).localname.lower() != "opml":
        raise FeedListError(f"{source}: the root element is <{_local(root)}>, not <opml>")
    body = next((c for c in root if isinstance(c.tag, str) and etree.QName(c).localname.lower() == "body"), None)
    if body is None:
        raise FeedListError(f"{source}: no <body> (an OPML file lists its feeds there)")
    specs: list[FeedSpec] = []
    _walk(body, [], specs, source, 0)
    return specs


def _walk(node: Any, folders: list[str], out: list[FeedSpec], source: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FeedListError(f"{source}: line {node.sourceline}: folders nested deeper than {MAX_DEPTH}")
    for child in node:
        if not isinstance(child.tag, str) or etree.QName(child).localname.lower() != "outline":
            continue
        attrs = {k.lower(): v for k, v in child.attrib.items()}
        label = _clean(attrs.get("title") or attrs.get("text"))
        url = (attrs.get("xmlurl") or "").strip()
        if url:
            if len(out) >= MAX_FEEDS:
                raise FeedListError(f"{source}: more than {MAX_FEEDS} feeds")
            out.append(_spec(url, label, folders, attrs.get("category"), source, child.sourceline))
        # A feed's own children are rare but allowed; a folder's are its feeds.
        _walk(child, folders + [label] if label and not url else folders, out, source, depth + 1)


def _spec(url: str, name: str, folders: list[str], category: str | None, source: str, line: int) -> FeedSpec:
    try:
        url = canonical_url(url)
    except InvalidURL as exc:
        raise FeedListError(f"{source}: line {line}: feed URL {url[:200]!r}: {exc}") from None
    tags: list[str] = []
    for t in [*folders, *(p for c in (category or "").split(",") for p in c.split("/"))]:
        t = _clean(t)[:MAX_TAG_CHARS]
        if t and t not in tags:
            tags.append(t)
    return FeedSpec(url=url, name=name[:MAX_NAME_CHARS] or url, tags=tuple(tags[:MAX_TAGS]))


def _clean(value: str | None) -> str:
    return " ".join(safe_text(value or "").split())


def _local(el: Any) -> str:
    return etree.QName(el).localname[:50] if isinstance(el.tag, str) else "?"


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


def to_opml(specs: Sequence[FeedSpec], *, title: str = "Newsroom feeds", now: datetime | None = None) -> bytes:
    """An OPML 2.0 document of the feeds: flat outlines, tags in `category` (which feed readers
    and `parse_opml` read back). Interval and outlet have no place in OPML: YAML keeps them."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = (now or datetime.now(UTC)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    body = etree.SubElement(root, "body")
    for s in specs:
        name = _xml_text(s.name)
        attrs = {"type": "rss", "text": name, "title": name, "xmlUrl": _xml_text(s.url)}
        if s.tags:
            attrs["category"] = _xml_text(",".join(t.replace(",", " ") for t in s.tags))
        etree.SubElement(body, "outline", attrs)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# What XML 1.0 cannot carry at all (a stored name is a stranger's text: a feed's own title, say)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def to_yaml(specs: Sequence[FeedSpec]) -> str:
    """Our feed list format (what NEWSROOM_FEEDS and `feeds import` read)."""
    feeds = []
    for s in specs:
        entry: dict[str, Any] = {"url": s.url, "name": s.name}
        if s.tags:
            entry["tags"] = list(s.tags)
        if s.poll_interval:
            entry["poll_interval"] = _interval_text(s.poll_interval)
        if s.outlet:
            entry["outlet"] = s.outlet
        feeds.append(entry)
    return "# Exported by `newsroom feeds export`.\n" + yaml.safe_dump(
        {"feeds": feeds}, allow_unicode=True, sort_keys=False, width=120)


def _interval_text(seconds: int) -> str | int:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            text = f"{seconds // size}{unit}"
            assert parse_interval(text) == seconds
            return text
    return seconds
