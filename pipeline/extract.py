"""The extraction stage: one downloaded HTML page in, one cleaned article record out.

Pure: no network, no database, no global state. The caller (the pipeline worker) loads the
page, calls `extract_article`, and stores the `Extraction` or records the `ExtractionFailed`.

Why one module of this size: the body, title, language and date of a page are decided together
from one parsed tree (each step reads what the previous one kept), and the extraction quality
benchmark measures the module as a whole.

How the body is found (steps 1-3 each measured better on the tuning half of the
extraction-dev set; see bench/extraction_eval.py):

1. The HTML is parsed once; embedded tweets/Instagram posts are lifted out of their
   "social"/"embed" wrappers, which trafilatura otherwise drops as share widgets.
2. trafilatura in precision mode, comments off, with link-only lists pruned (related-article
   lists). Only if that comes back short: the publisher's JSON-LD `articleBody`, then
   trafilatura's full balanced cascade (a safety net, e.g. for JavaScript-rendered pages;
   it never fires on the dev pages).
3. Line clean-up: a repeated title/byline/dateline at the start, "Related:"/"Don't miss"
   blocks, and newsletter/"follow us" promos in the last lines are dropped.
4. Refusals: paywall stubs, index pages and bodies too short to be an article raise
   `ExtractionFailed`; an empty "success" is never returned.

Dates come from the page (htmldate), the feed entry and the URL; `reconcile_dates` picks one.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import trafilatura
from htmldate import find_date
from lxml import etree
from lxml.html import HtmlElement, fragment_fromstring
from trafilatura import metadata as trafilatura_metadata
from trafilatura.settings import Document

from pipeline.errors import ItemFailed
from pipeline.records import Extraction
from pipeline.states import ErrorClass
from pipeline.text import safe_text

log = logging.getLogger(__name__)

# Bump whenever the output for the same page can change (text, dates, refusals).
EXTRACTOR_VERSION = "x2-trafilatura2.3.1"

# --- thresholds ------------------------------------------------------------------------------

MIN_WORDS = 30  # fewer words (and MIN_CHARS chars) than this is not an article body
MIN_CHARS = 200  # ... the char floor keeps CJK pages, which have few \w+ "words", alive
SHORT_TEXT_CHARS = 500  # a precision-mode result below this gets the fallbacks
FALLBACK_GAIN = 1.5  # a fallback must be this much longer to replace the first result
PAYWALL_MAX_WORDS = 250  # teaser-length: a paywalled page shows at most this much
INDEX_LINK_SHARE = 0.6  # share of the body made of headline links on an index page
INDEX_MIN_HEADLINES = 10  # links of 4+ words: an index page lists at least this many stories
PROSE_MIN_WORDS = 25  # a line this long is a paragraph of prose, not a headline or blurb
FUTURE_TOLERANCE = timedelta(days=1)  # timezone slack before a date counts as "future"
MAX_PAGE_FEED_GAP = timedelta(days=3)  # page further than this from the feed/URL date: page is wrong
MIN_DATE = datetime(1995, 1, 1, tzinfo=UTC)  # before the web news era: a parsing accident

REASONS = (ErrorClass.EMPTY_HTML, ErrorClass.NO_BODY, ErrorClass.TOO_SHORT, ErrorClass.PAYWALL, ErrorClass.NOT_ARTICLE)


class ExtractionFailed(ItemFailed):
    """The page has no usable article body; retrying the same HTML will not help.

    `reason` (its error class) is one of REASONS, short and stable enough to group failures by.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown extraction failure reason {reason!r}")
        super().__init__(reason, f"extraction failed ({reason}): {detail}" if detail else f"extraction failed ({reason})")
        self.reason = self.error_class
        self.detail = detail

    def __reduce__(self) -> tuple[type[ExtractionFailed], tuple[str, str]]:
        # Survive pickling (multiprocessing, task queues): rebuild from reason and detail.
        return (type(self), (self.reason, self.detail))


# --- public entry point ----------------------------------------------------------------------

def extract_article(
    html: str,
    *,
    url: str | None = None,
    feed_published: datetime | None = None,
    feed_summary: str | None = None,
    feed_title: str | None = None,
) -> Extraction:
    """Clean article text and metadata from one page, or raise ExtractionFailed.

    `feed_*` are what the feed entry said; they fill gaps and arbitrate the date. The feed
    summary is never used as the body (a teaser is not the article); it only helps spot a
    paywall teaser.
    """
    tree = _parse(html)
    ld = _json_ld_objects(tree)
    _unwrap_embeds(tree)
    meta = _metadata(tree)

    title = _clean_title(meta.title, meta.sitename) or _clean_text(feed_title) or None
    text = safe_text(_extract_body(tree, url, ld))  # JSON-LD may carry "\u0000" or "\ud800"
    if not text:
        if _is_index_page(text, tree, ld):
            raise ExtractionFailed("not_article", "no article body, the page is mostly headline links")
        raise ExtractionFailed("no_body", "no article body found in the page")

    titles = [t for t in (meta.title, title, feed_title, _first_h1(tree)) if t]
    text = clean_lines(text, titles=titles, author=meta.author)
    words = count_words(text)

    if words <= PAYWALL_MAX_WORDS and (marker := _paywall_marker(tree, ld, text, feed_summary)):
        raise ExtractionFailed("paywall", f"{words}-word teaser and {marker}")
    if _is_index_page(text, tree, ld):
        raise ExtractionFailed("not_article", "headlines and link texts, no article prose")
    if not words or (words < MIN_WORDS and len(text) < MIN_CHARS):  # 300 emoji are no article
        raise ExtractionFailed("too_short", f"{words} words, below the {MIN_WORDS}-word minimum")

    published_at, published_source = reconcile_dates(
        page=_page_date(tree), feed=feed_published, url=url_date(url), now=datetime.now(UTC)
    )
    return Extraction(
        text=text,
        title=title,
        author=_clean_text(meta.author) or None,
        language=detect_language(tree, ld, text),
        published_at=published_at,
        published_source=published_source,
        word_count=words,
        content_hash=content_hash(text),
        extractor_version=EXTRACTOR_VERSION,
    )


# --- parsing ---------------------------------------------------------------------------------

def _parse(html: str) -> HtmlElement:
    if not html or not html.strip():
        raise ExtractionFailed("empty_html", "the page is empty")
    try:
        tree = trafilatura.load_html(html)
    except (TypeError, ValueError, etree.ParserError) as err:
        raise ExtractionFailed("empty_html", f"the page could not be parsed as HTML: {err}") from err
    if tree is None or not "".join(tree.itertext()).strip():
        raise ExtractionFailed("empty_html", "the page has no text")
    _scrub(tree)
    return tree


# Characters lxml refuses to set as text or attribute values, though its HTML parser makes them
# from references ("&#11;"); trafilatura copies text and attributes around and then crashes.
_XML_UNFIT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _scrub(tree: HtmlElement) -> None:
    """Replace `_XML_UNFIT` characters in text, tails and attribute values with spaces, in place."""
    for el in tree.iter():
        if el.text and _XML_UNFIT.search(el.text):
            el.text = _XML_UNFIT.sub(" ", el.text)
        if el.tail and _XML_UNFIT.search(el.tail):
            el.tail = _XML_UNFIT.sub(" ", el.tail)
        if isinstance(el.tag, str):
            for key, value in el.attrib.items():
                if _XML_UNFIT.search(value):
                    el.set(key, _XML_UNFIT.sub(" ", value))


def _json_ld_objects(tree: HtmlElement) -> list[dict[str, Any]]:
    """Every JSON-LD object on the page, flattened out of lists and @graph."""
    out: list[dict[str, Any]] = []

    def walk(node: Any, depth: int = 0) -> None:
        if depth > 4:  # publishers nest deeply only by accident
            return
        if isinstance(node, list):
            for item in node:
                walk(item, depth + 1)
        elif isinstance(node, dict):
            out.append(node)
            for key in ("@graph", "mainEntity", "hasPart"):
                if key in node:
                    walk(node[key], depth + 1)

    for script in tree.iterfind('.//script[@type="application/ld+json"]'):
        try:
            walk(json.loads(script.text or "", strict=False))
        except (ValueError, RecursionError):
            continue  # broken JSON-LD is common; the page may still be fine
    return out


def _ld_types(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k for k in kinds if isinstance(k, str)}


_SOCIAL_WRAPPER = re.compile(r"social|embed", re.I)


def _unwrap_embeds(tree: HtmlElement) -> None:
    """Lift embedded tweets/Instagram posts out of "social"/"embed" wrappers, in place.

    Why: trafilatura prunes containers whose class says "social" (share buttons), and with
    them the quoted tweets that are part of the story.
    """
    quotes = tree.xpath('//blockquote[contains(@class, "twitter-tweet") or contains(@class, "instagram-media")]')
    for quote in quotes:
        wrapper = None
        for anc in quote.iterancestors():
            if anc.tag in ("article", "main", "body"):
                break
            if _SOCIAL_WRAPPER.search(f"{anc.get('class', '')} {anc.get('id', '')}"):
                wrapper = anc
        if wrapper is not None and wrapper.getparent() is not None:
            quote.tail = wrapper.tail
            wrapper.getparent().replace(wrapper, quote)


@dataclass(frozen=True, slots=True)
class _PageMeta:
    title: str | None
    author: str | None
    sitename: str | None


_JSON_SCRIPT_TYPES = ("application/ld+json", "application/settings+json")  # what trafilatura reads
_LD_TAG_BUDGET = 200_000_000  # "<" count x length: a bound on that regex's work (~0.2 s)


def _metadata(tree: HtmlElement) -> _PageMeta:
    """Title, author and site name, the way trafilatura.extract_metadata finds them.

    Why not extract_metadata itself: it also computes categories, tags, licence and a date,
    a third of its time, all unused here (the date comes from _page_date).
    """
    # trafilatura strips tags from JSON-LD text with r"<[^>]*>", which backtracks quadratically
    # when "<" abound without ">" (10 MB of "<a" takes hours): such scripts are hidden from it.
    hidden = [(el, el.get("type")) for el in tree.iterfind(".//script")
              if el.get("type") in _JSON_SCRIPT_TYPES and el.text and el.text.count("<") * len(el.text) > _LD_TAG_BUDGET]
    try:
        for el, _ in hidden:
            el.set("type", "text/x-hidden")
        meta = trafilatura_metadata.examine_meta(tree)
        if meta.author and " " not in meta.author:  # a single token is a handle, not a name
            meta.author = None
        meta = trafilatura_metadata.extract_meta_json(tree, meta)
    except Exception as err:  # as trafilatura does: publisher JSON-LD is endlessly malformed
        log.debug("metadata extraction failed: %s", err)
        meta = Document()
    finally:
        for el, kind in hidden:
            el.set("type", kind)
    title = meta.title or trafilatura_metadata.extract_title(tree)
    author = meta.author or trafilatura_metadata.extract_author(tree)
    sitename = meta.sitename or trafilatura_metadata.extract_sitename(tree)
    return _PageMeta(title=title, author=author, sitename=sitename)


def _first_h1(tree: HtmlElement) -> str | None:
    h1 = tree.find(".//h1")
    return h1.text_content() if h1 is not None else None


# --- the body --------------------------------------------------------------------------------

# Lists whose every item is just one link: related articles, tag clouds, navigation.
_LINK_LIST_XPATH = "|".join(
    f"//{tag}[count(li) >= 2][not(li[not(.//a) or normalize-space(.) != normalize-space(.//a[1])])]"
    for tag in ("ul", "ol")
)


def _trafilatura_text(tree: HtmlElement, url: str | None, *, precision: bool) -> str:
    doc = trafilatura.bare_extraction(
        tree,  # trafilatura works on its own copy: the caller's tree stays untouched
        url=url,
        # The precision pass skips trafilatura's readability/justext comparison ("fast"):
        # same F1 on the tuning pages at 1.5x the speed. The fallback pass keeps it.
        fast=precision,
        favor_precision=precision,
        include_comments=False,
        include_tables=True,
        prune_xpath=_LINK_LIST_XPATH,
    )
    return unicodedata.normalize("NFC", doc.text or "") if doc is not None else ""


def _extract_body(tree: HtmlElement, url: str | None, ld: list[dict[str, Any]]) -> str:
    text = _trafilatura_text(tree, url, precision=True)
    if len(text) >= SHORT_TEXT_CHARS:
        return text
    # Short: precision mode may have cut too much, or the page renders its body with
    # JavaScript. Only these pages pay for the fallbacks. The publisher's own complete
    # articleBody comes first: it keeps its paragraphs, trafilatura's rescue does not.
    body = json_ld_body(ld)
    if body and len(body) > FALLBACK_GAIN * len(text):
        log.debug("extraction short (%d chars), JSON-LD articleBody gave %d", len(text), len(body))
        return body
    wider = _trafilatura_text(tree, url, precision=False)
    if len(wider) > FALLBACK_GAIN * len(text):
        log.debug("precision extraction short (%d chars), balanced mode gave %d", len(text), len(wider))
        return wider
    return text


_TRUNCATED = ("…", "...", "[…]", "[...]")


def json_ld_body(ld: list[dict[str, Any]]) -> str:
    """The publisher's JSON-LD articleBody as plain text, or "" if absent or a truncated teaser."""
    bodies = [o["articleBody"] for o in ld if isinstance(o.get("articleBody"), str)]
    if not bodies:
        return ""
    raw = max(bodies, key=len)
    if re.search(r"</?[a-zA-Z][^<>]*>", raw):  # HTML inside the JSON string ([^<>]: linear on "<a<a<a...")
        try:
            frag = fragment_fromstring(raw, create_parent="div")
        except (etree.ParserError, ValueError):
            return ""
        for el in frag.iter("p", "br", "div", "li", "h1", "h2", "h3", "h4", "blockquote"):
            el.tail = "\n" + (el.tail or "")
        raw = frag.text_content()
    for _ in range(2):  # entities, sometimes escaped twice ("&amp;quot;")
        unescaped = html_lib.unescape(raw)
        if unescaped == raw:
            break
        raw = unescaped
    text = "\n".join(line for line in (" ".join(part.split()) for part in raw.splitlines()) if line)
    return "" if text.endswith(_TRUNCATED) else unicodedata.normalize("NFC", text)


# --- line clean-up ---------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+")
# A CJK character is a word on its own; elsewhere a word is a run of \w.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")

_RELATED_HEADER = re.compile(
    r"^(related( articles| stories| content| posts| coverage)?|don'?t miss|you may also like|you might also like"
    r"|recommended( for you| stories)?|more (stories|from|on)\b.*|read more|see also|trending( now)?|most popular)"
    r"[\s.:…]*$",
    re.I,
)
_RELATED_PREFIX = re.compile(r"^(related( articles| stories| content| posts)?|see more|read more|also read|more)\s*:", re.I)
_PROMO = re.compile(
    r"^(subscribe|sign up|get the latest|have a tip)\b|\b(newsletters?|follow (him|her|us|them|me) on|in your inbox)\b",
    re.I,
)
PROMO_TAIL_LINES = 3  # promos sit at the very end; elsewhere these words can be the story
_YEAR = re.compile(r"\b(19|20)\d\d\b")


def _tokens(text: str | None) -> list[str]:
    return [t.casefold() for t in _TOKEN.findall(text or "")]


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def _is_title_line(line: str, titles: list[str]) -> bool:
    words = _tokens(line)
    if not words or len(words) > 30:
        return False
    for title in titles:
        ref = _tokens(title)
        if not ref:
            continue
        if words == ref or (len(words) >= 3 and words == ref[: len(words)]):
            return True  # the title, or the title without its " | Site" suffix
        shared = len(set(words) & set(ref))
        if shared >= 0.8 * len(set(words)) and shared >= 0.6 * len(set(ref)) and not _ends_sentence(line):
            return True  # the headline reworded slightly (og:title vs h1); a lede ends in a period
    return False


def _is_byline(line: str, author: str | None) -> bool:
    words = _tokens(line)
    if not words or len(words) > 12:
        return False
    if words[0] == "by" and len(words) <= 8 and not _ends_sentence(line):
        return True  # "By Jane Doe", not "By noon, it was over."
    names = set(_tokens(author)) | {"by", "and"}
    if author and set(words) <= names:
        return True
    # a dateline such as "Tuesday, 19 November 2019 at 20:13": a year and mostly numbers
    digits = sum(w.isdigit() for w in words)
    return bool(_YEAR.search(line)) and digits >= 0.3 * len(words) and not _ends_sentence(line)


def _ends_sentence(line: str) -> bool:
    return line.rstrip().rstrip("\"'”’»)").endswith((".", "!", "?"))


def _sentence_like(line: str) -> bool:
    stripped = line.rstrip()
    return stripped.endswith((".", "!", "?", '"', "”", ":", "»")) or len(stripped.split()) > 25


def clean_lines(text: str, *, titles: list[str] | None = None, author: str | None = None) -> str:
    """Normalise whitespace and drop the repeated title, bylines and related/promo blocks."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]

    # The headline, byline and dateline trafilatura sometimes keeps above the first paragraph.
    head = 0
    while head < min(3, len(lines)) and (
        _is_title_line(lines[head], titles or []) or _is_byline(lines[head], author)
    ):
        head += 1
    lines = lines[head:]

    kept: list[str] = []
    skipping = False  # inside a "Related" block: headline-like lines follow the header
    for line in lines:
        if _RELATED_HEADER.match(line) or _RELATED_PREFIX.match(line):
            skipping = True
            continue
        if skipping and (line.startswith("- ") or not _sentence_like(line)):
            continue
        skipping = False
        kept.append(line)

    tail_start = len(kept) - PROMO_TAIL_LINES
    kept = [
        line for i, line in enumerate(kept)
        if not (i >= tail_start and len(line.split()) < 40 and _PROMO.search(line))
    ]
    return "\n".join(kept)


# --- refusals --------------------------------------------------------------------------------

# Wording a paywall box uses and a free page does not ("Subscribe" or "Already a subscriber?
# Sign in" sit in the header of free articles too).
_PAYWALL_PHRASES = re.compile(
    r"subscribe (now )?to (continue|keep) reading|subscribe to (read|unlock) (the|this)|"
    r"to (continue|keep) reading,? (please )?(subscribe|log ?in|sign ?in|register|create)|"
    r"(sign|log) ?in to (continue|keep) reading|create a free account to (continue|keep) reading|"
    r"this (article|story|content) is (only )?(available |reserved )?(to|for) (paying |premium )?subscribers|"
    r"for subscribers only|subscriber[- ]only (content|article|story)|"
    r"you('ve| have) (reached|used) (your|all of your) (\w+ )?(free )?(articles?|stories)",
    re.I,
)


def _paywall_marker(
    tree: HtmlElement, ld: list[dict[str, Any]], text: str, feed_summary: str | None
) -> str | None:
    """Why this teaser-length page looks paywalled, or None. Only asked for short bodies."""
    for obj in ld:
        flag = obj.get("isAccessibleForFree")
        if flag is False or (isinstance(flag, str) and flag.strip().lower() == "false"):
            return "JSON-LD isAccessibleForFree=false"
    for el in tree.xpath('//*[@itemprop="isAccessibleForFree"]'):
        if (el.get("content") or "").strip().lower() == "false":
            return "microdata isAccessibleForFree=false"
    page_text = " ".join(_visible_text(tree).split())
    if m := _PAYWALL_PHRASES.search(page_text):
        return f"paywall wording {m.group(0)!r}"
    # The page shows no more than the feed's teaser, cut off mid-sentence.
    if feed_summary and text.rstrip().endswith(_TRUNCATED):
        summary = set(_tokens(feed_summary))
        words = _tokens(text)
        if words and summary and sum(w in summary for w in words) >= 0.9 * len(words):
            return "only the feed summary, truncated"
    return None


def _visible_text(tree: HtmlElement) -> str:
    return " ".join(tree.xpath(
        "//body//text()[not(ancestor::script or ancestor::style or ancestor::noscript or ancestor::template)]"
    ))


def _link_texts(tree: HtmlElement) -> set[str]:
    return {" ".join(_tokens(a.text_content())) for a in tree.iter("a")} - {""}


def _declares_article(tree: HtmlElement, ld: list[dict[str, Any]]) -> bool:
    if any(t.endswith("Article") or t in ("BlogPosting", "Report") for o in ld for t in _ld_types(o)):
        return True
    return tree.xpath('string(//meta[@property="og:type"]/@content)').strip().lower() == "article"


def _is_index_page(text: str, tree: HtmlElement, ld: list[dict[str, Any]]) -> bool:
    """A section/index page rather than an article: headlines and blurbs, no prose.

    Two signs, either enough: most of the extracted text is made of the page's headline
    links (link texts of 4+ words); or not one line is a paragraph (PROSE_MIN_WORDS) while
    the page carries many headline links and does not declare itself an article.
    """
    headlines = [t for t in _link_texts(tree) if t.count(" ") >= 3]
    flat = " ".join(_tokens(text))
    if flat and sum(flat.count(h) * len(h) for h in headlines) >= INDEX_LINK_SHARE * len(flat):
        return True
    if any(count_words(line) >= PROSE_MIN_WORDS for line in text.splitlines()):
        return False
    return len(headlines) >= INDEX_MIN_HEADLINES and not _declares_article(tree, ld)


# --- language --------------------------------------------------------------------------------

_LANG_CODE = re.compile(r"^([a-zA-Z]{2,3})(?:[-_][a-zA-Z0-9]+)*$")


def _lang_code(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    m = _LANG_CODE.match(value.strip())
    return m.group(1).lower() if m else None


def detect_language(tree: HtmlElement, ld: list[dict[str, Any]], text: str) -> str | None:
    """The article's language as a short code ("en"), or None.

    The page's declaration comes first, most specific source first: Content-Language meta,
    JSON-LD inLanguage, <html lang>, og:locale. Templates often leave <html lang> at a default
    (an English page served as "de"), so the declaration is checked against the body's
    stopwords when the body is long enough; a clear mismatch, or no declaration, gives the
    stopword vote.
    """
    candidates: list[Any] = []
    candidates += tree.xpath(
        '//meta[translate(@http-equiv, "CONTENTLANGUAGE", "contentlanguage")="content-language"]/@content'
    )
    candidates += [o.get("inLanguage") for o in ld if o.get("inLanguage")]
    candidates += [tree.get("lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang")]
    candidates += tree.xpath('//meta[@property="og:locale"]/@content')
    declared = None
    for value in candidates:
        if isinstance(value, dict):  # schema.org Language object
            value = value.get("alternateName") or value.get("name")
        if declared := _lang_code(value):
            break

    scores = _stopword_scores(text)
    if not scores:
        return declared
    best = max(scores, key=scores.__getitem__)
    if declared is None or declared in scores:
        if scores[best] >= STOPWORD_MIN_SHARE and scores.get(declared or "", 0.0) < 0.5 * scores[best]:
            return best
    return declared


# Languages the stopword check knows, by justext stoplist name; others keep their declaration.
# (Not Turkish: justext's Turkish list is full of English words.)
_STOPLIST_NAMES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "pt": "Portuguese",
    "it": "Italian", "nl": "Dutch", "sv": "Swedish", "da": "Danish", "pl": "Polish",
    "id": "Indonesian", "ru": "Russian",
}
STOPWORD_MIN_SHARE = 0.25  # ordinary prose is 30-50% stopwords in its own language
STOPWORD_SAMPLE = 400  # words; enough to tell languages apart
STOPWORD_MIN_WORDS = 40
_stoplists: dict[str, frozenset[str]] = {}


def _stopword_scores(text: str) -> dict[str, float]:
    """Share of the text's first words that are stopwords, per known language."""
    words = [w.casefold() for w in _TOKEN.findall(text[: STOPWORD_SAMPLE * 12])][:STOPWORD_SAMPLE]
    if len(words) < STOPWORD_MIN_WORDS:
        return {}
    return {code: sum(w in stop for w in words) / len(words) for code, stop in _load_stoplists().items()}


def _latin_share(text: str) -> float:
    """Share of the letters of `text` that are Latin (ASCII, Latin-1, Latin Extended); 1.0 without letters."""
    letters = [c for c in text if c.isalpha()]
    return sum(c < "\u0250" for c in letters) / len(letters) if letters else 1.0


def _load_stoplists() -> dict[str, frozenset[str]]:
    if not _stoplists:
        import justext  # a trafilatura dependency; imported late as only this needs it

        for code, name in _STOPLIST_NAMES.items():
            _stoplists[code] = frozenset(justext.get_stoplist(name))
    return _stoplists


def tagging_language(language: str | None, text: str) -> str | None:
    """The language an article is tagged as: its detected `language` (articles.language); for
    one without (None), English only when the text is too short for the stopword vote
    (STOPWORD_MIN_WORDS: `detect_language` could not judge), is written in Latin letters, and no
    other language's stopwords outnumber English's in it. Otherwise None: the article's language
    is unknown, and no model runs on it. A long text without a language is one whose stopwords
    matched none of the languages known here: not English, so English's model never sees it."""
    if language:
        language = language.lower()
        # A page may declare English over text in another script (a template's default that
        # the stopword check cannot overrule: it knows no non-Latin language but Russian).
        return None if language == "en" and _latin_share(text[:STOPWORD_SAMPLE * 12]) < 0.5 else language
    words = [w.casefold() for w in _TOKEN.findall(text[: STOPWORD_MIN_WORDS * 40])]
    if len(words) >= STOPWORD_MIN_WORDS or not words or _latin_share(" ".join(words)) < 0.9:
        return None
    shares = {code: sum(w in stop for w in words) for code, stop in _load_stoplists().items()}
    return "en" if all(n <= shares["en"] for code, n in shares.items() if code != "en") else None


# --- dates -----------------------------------------------------------------------------------

_URL_DATE = re.compile(r"(?<!\d)((?:19|20)\d\d)[/_-]?(0[1-9]|1[0-2])[/_-]?(0[1-9]|[12]\d|3[01])(?!\d)")
_URL_DATE_SEP = re.compile(r"(?<!\d)((?:19|20)\d\d)[/_-](0?[1-9]|1[0-2])[/_-](0?[1-9]|[12]\d|3[01])(?!\d)")


def url_date(url: str | None) -> datetime | None:
    """A publication day written into the URL path (/2019/11/05/, /2019-11-05-...), or None."""
    if not url:
        return None
    path = re.sub(r"^[a-z]+://[^/]+", "", url, flags=re.I)
    m = _URL_DATE_SEP.search(path) or _URL_DATE.search(path)
    if not m:
        return None
    try:
        return datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=UTC)
    except ValueError:
        return None


def _page_date(tree: HtmlElement) -> datetime | None:
    """The publication date the page states in its markup (never the URL), as aware UTC."""
    max_day = (datetime.now(UTC) + timedelta(days=400)).strftime("%Y-%m-%d")
    try:
        found = find_date(
            tree,
            url="",  # not None: keeps htmldate from reading the date out of the URL
            original_date=True,
            # Markup only (meta, JSON-LD, <time>, ...): the free-text search reads footers,
            # and "Copyright 2024" becomes a publication date of 1 January.
            extensive_search=False,
            outputformat="%Y-%m-%dT%H:%M:%S%z",
            max_date=max_day,  # let future dates through: reconcile_dates decides about them
        )
    except (ValueError, TypeError) as err:  # pragma: no cover - htmldate guards most inputs
        log.debug("htmldate failed: %s", err)
        return None
    return _parse_iso(found) if found else None


def _parse_iso(value: str) -> datetime | None:
    try:
        return _as_utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        return None


def _as_utc(value: datetime) -> datetime:
    # A naive time is taken as UTC: wrong by the page's offset at worst, never by days.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _date_only(value: datetime) -> bool:
    return (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0)


def reconcile_dates(
    *,
    page: datetime | None,
    feed: datetime | None,
    url: datetime | date | None,
    now: datetime,
) -> tuple[datetime | None, str | None]:
    """Pick the publication time and say where it came from: ("page" | "feed" | "url").

    - A date in the future (beyond a day of timezone slack) or before 1995 is discarded.
    - The page wins if it agrees (within MAX_PAGE_FEED_GAP) with the feed date, or, with no
      feed date, with the URL's day; otherwise that reference wins. A page that only states a
      day loses to a feed timestamp on that same day, which is just more precise.
    - The feed comes next; the URL, a bare day, is the last resort.
    """
    if isinstance(url, date) and not isinstance(url, datetime):
        url = datetime(url.year, url.month, url.day, tzinfo=UTC)
    now = _as_utc(now)

    def plausible(value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            value = _as_utc(value)
        except OverflowError:  # within hours of year 1 or 9999: implausible anyway
            return None
        return value if MIN_DATE <= value <= now + FUTURE_TOLERANCE else None

    page, feed, url = plausible(page), plausible(feed), plausible(url)
    if page is not None:
        if feed is not None:
            if abs(page - feed) > MAX_PAGE_FEED_GAP:
                return feed, "feed"
            if _date_only(page) and abs(feed - page) <= timedelta(days=1):
                return feed, "feed"
        elif url is not None and abs(page - url) > MAX_PAGE_FEED_GAP:
            return url, "url"
        return page, "page"
    if feed is not None:
        return feed, "feed"
    if url is not None:
        return url, "url"
    return None, None


# --- small helpers ---------------------------------------------------------------------------

def _clean_text(value: str | None) -> str:
    return " ".join(safe_text(value).split()) if value else ""


def _clean_title(title: str | None, sitename: str | None) -> str:
    """The headline without a trailing " | Site name" when the site name is known."""
    title = _clean_text(title)
    if title and sitename:
        for sep in (" | ", " - ", " – ", " — ", " :: "):
            head, found, tail = title.rpartition(sep)
            if found and head and tail.strip().casefold() == sitename.strip().casefold():
                return head.strip()
    return title


def content_hash(text: str) -> str:
    """sha256 of the text folded for comparison: NFKC, case-folded, whitespace collapsed."""
    folded = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()
