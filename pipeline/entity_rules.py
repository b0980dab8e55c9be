"""General span and label rules for the entity mentions of one English news text, applied to
the raw mentions (spaCy's and the gazetteer's) before `nlp.normalise` (`nlp.tag_entities` runs
them for English pipelines only: they read English words and capitalisation).

Pure: text and mentions in, mentions out; no model and no lists of names (only a few lists of
common English words: titles, table headings, sentence openers, company suffixes). Each rule is
a named function whose docstring says why it holds for news text in general; `explain` says
which rule changed what (`Change`, keyed by `RuleName`). Offsets stay exact:
text[start:end] == surface.
Linear in the text and the number of mentions (line look-ups by bisection, line-anchored
patterns, no pairwise comparison of mentions).

Measured on the CoNLL-2003 English dev set with bench/ner_eval.py (only measured with: no rule
is written for its sentences), re-measured after the check on real modern news
(bench/entity_rules_check.py, judged sample bench/entity_rules_sample.tsv), which dropped four
rules fitted to 1996 sports tables (results_team, row_head, venue, place_modifier: they turned
casualty, poll and defence-spending tables and "US Chinook" into ORG) and narrowed others. All
rules: micro F1 0.693 -> 0.773 (PER 0.753 -> 0.842, ORG 0.355 -> 0.482, LOC 0.839 -> 0.872).
F1 change when one rule alone is turned off (`skip=`), PER / ORG / LOC / micro:

    split_span      -0.026 / -0.034 /  0.000 / -0.017
    leading_the      0.000 / -0.067 / -0.008 / -0.018
    title_prefix    -0.002 /  0.000 /  0.000 / -0.001
    possessive      -0.011 / -0.010 / -0.002 / -0.007
    agency           0.000 / -0.003 /  0.000 / -0.001
    table_word      -0.002 / -0.003 /  0.000 / -0.002
    dateline         0.000 /  0.000 / -0.019 / -0.008
    caps_line       -0.001 / -0.011 /  0.000 / -0.004
    caps_echo       -0.001 / -0.002 /  0.000 / -0.001
    initial_name    -0.008 / -0.001 /  0.000 / -0.004
    competitor      -0.017 / -0.004 /  0.000 / -0.009
    first_name      -0.006 /  0.000 /  0.000 / -0.002
    acronym          0.000 / -0.004 /  0.000 / -0.001
    name_echo       -0.016 /  0.000 /  0.000 / -0.007

The set is one week of 1996 Reuters, half of it sports results and tables (hence its low ORG
figure without the dropped table rules); on the judged real-news sample the narrowed rules
keep 119 of the 131 changes judged better and 2 of the 42 judged worse.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from pipeline.records import Mention


class RuleName(StrEnum):
    """Which rule decided a change (see the function of the same name)."""

    SPLIT_SPAN = "split_span"
    LEADING_THE = "leading_the"
    TITLE_PREFIX = "title_prefix"
    POSSESSIVE = "possessive"
    AGENCY = "agency"
    TABLE_WORD = "table_word"
    DATELINE = "dateline"
    CAPS_LINE = "caps_line"
    CAPS_ECHO = "caps_echo"
    INITIAL_NAME = "initial_name"
    COMPETITOR = "competitor"
    FIRST_NAME = "first_name"
    ACRONYM = "acronym"
    NAME_ECHO = "name_echo"


@dataclass(frozen=True, slots=True)
class Change:
    """One decision: `before` None = a mention added, `after` None = a mention dropped."""

    rule: RuleName
    before: Mention | None
    after: Mention | None


# Labels that name things (spaCy's); the numeric ones (DATE, CARDINAL, MONEY...) are left alone.
NAME_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "EVENT", "PRODUCT", "LAW",
                         "WORK_OF_ART", "LANGUAGE"})
# Labels of places, which the model gives to a team named after its town.
PLACE_LABELS = frozenset({"GPE", "LOC", "FAC"})

# Labels whose names may end in a number.
_NUMBERED = frozenset({"PRODUCT", "EVENT", "LAW", "WORK_OF_ART"})

_LOWER_WORD = re.compile(r"(?<![\w'-])[a-z][\w'-]*")


class _Doc:
    """The text with its line boundaries (bisect: linear time whatever the number of mentions)
    and the changes made so far."""

    __slots__ = ("changes", "text", "_caps", "_lower_words", "_newlines", "_results")

    def __init__(self, text: str) -> None:
        self.text = text
        self._newlines = [m.start() for m in re.finditer("\n", text)]
        self._results: dict[int, bool] = {}
        self._caps: dict[int, bool] = {}
        self._lower_words: frozenset[str] | None = None
        self.changes: list[Change] = []

    @property
    def lower_words(self) -> frozenset[str]:
        """The words the text writes in lower case (computed once, when first asked for)."""
        if self._lower_words is None:
            self._lower_words = frozenset(_LOWER_WORD.findall(self.text))
        return self._lower_words

    def line(self, pos: int) -> tuple[int, int]:
        """(start, end) of the line holding text[pos], the newline excluded."""
        k = bisect_left(self._newlines, pos)
        start = self._newlines[k - 1] + 1 if k else 0
        end = self._newlines[k] if k < len(self._newlines) else len(self.text)
        return start, end

    def span(self, m: Mention, start: int, end: int, label: str | None = None) -> Mention:
        return replace(m, start=start, end=end, surface=self.text[start:end],
                       label=m.label if label is None else label)

    def is_caps_line(self, pos: int) -> bool:
        """Whether the line holding text[pos] has capital letters and no lower-case ones (a
        headline, a table's heading or row); a script without case never is."""
        start, end = self.line(pos)
        hit = self._caps.get(start)
        if hit is None:
            line = self.text[start:end]
            hit = self._caps[start] = any(c.isupper() for c in line) and not any(c.islower() for c in line)
        return hit

    def is_results_line(self, pos: int) -> bool:
        start, end = self.line(pos)
        hit = self._results.get(start)
        if hit is None:
            hit = self._results[start] = _reads_like_results(self.text[start:end])
        return hit


# --- span edges ------------------------------------------------------------------------------

# A company's legal suffix after a comma is part of its name ("Acme, Inc.", "Borg, S.A.").
_NOT_SUFFIX = r"(?!(?:Inc|Ltd|LLC|Corp|[Pp]lc|PLC|AG|GmbH|S\.A|N\.V)(?![\w-]))"
# Where a name cannot continue: a line break, a spaced dash, colon or slash, a comma, a bracket,
# a token of punctuation alone ("-", "+"), a score ("2-1").
_CUT = re.compile(r"\s*\n\s*|\s+[-\u2013\u2014:;|/]+\s+|\s*,\s+" + _NOT_SUFFIX + r"|\s*[()\[\]]\s*"
                  r"|(?:^|\s+)[-+*=#\u2013\u2014]+(?=\s|$)|(?:^|\s+)\d+[-:]\d+(?=\s|$)")
# ... and, for persons and places anywhere and for any name in a line of results, a number or
# score ("83", "4-38", "+353", ".596", "1/2").
_CUT_NUMBER = re.compile(r"\s*\n\s*|\s+[-\u2013\u2014:;|/]+\s+|\s*,\s+" + _NOT_SUFFIX + r"|\s*[()\[\]]\s*"
                         r"|(?:^|\s+)[-+*=#\u2013\u2014]+(?=\s|$)"
                         r"|(?:^|\s+)[-+]?(?:\d[\d.,:/-]*|\.\d+)(?=\s|$)")
# Labels whose names never end in a number ("Route 66" is a FAC, "Channel 4" an ORG).
_NO_NUMBER = frozenset({"PERSON", "GPE", "LOC", "NORP"})


def split_span(doc: _Doc, m: Mention) -> list[Mention]:
    """A name does not run across a line break, a spaced dash or colon, a comma, a bracket or a
    score ("Scott Smith ( Australia", "Carlisle 4 2 1 1\\nHull", "Estonia 1-0"), nor, for a
    person or place or in a line of results, a number ("Somerset 83", "J. Ratcliffe 63",
    "Haitai 2 Samsung 0"). The model joins these in tables and results, where it has no
    lower-case context. The pieces with a capital letter (or a letter of a script without
    case) are kept, with the span's label (later rules and `normalise` may correct it); a span
    without one is no name ("182nd"), and so is a one-word piece the text also writes in lower
    case ("the Levant\\nHeavy rain": "Heavy") or that starts a line and is followed by a
    lower-case word, a sentence's opener ("Amazon\\nSince the launch": "Since"). A comma before
    a company's legal suffix is no cut ("Acme, Inc."), and a possessive clitic left at a
    piece's start goes whole ("\u2019s Haqqani": "Haqqani"). Numeric labels are left alone, and so are products,
    events and laws outside lines of results, as their names do carry numbers ("Boeing 747",
    "Euro 96")."""
    if m.label not in NAME_LABELS:
        return [m]
    if not _may_be_name(m.surface):
        return []
    if m.label in _NUMBERED and "\n" not in m.surface and not doc.is_results_line(m.start):
        return [m]
    cuts = _CUT_NUMBER if m.label in _NO_NUMBER or doc.is_results_line(m.start) else _CUT
    pieces: list[tuple[int, int, bool]] = []  # (start, end, after a line break)
    pos, after_break = m.start, False
    for cut in cuts.finditer(m.surface):
        pieces.append((pos, m.start + cut.start(), after_break))
        pos, after_break = m.start + cut.end(), "\n" in cut.group()
    pieces.append((pos, m.end, after_break))
    out = []
    for a, b, broken in pieces:
        clitic = _CLITIC.match(doc.text, a, b)
        if clitic is not None:
            a = clitic.end()
        piece = doc.text[a:b]
        a, b = a + len(piece) - len(piece.lstrip(_LEAD_JUNK)), b - len(piece) + len(piece.rstrip(_TRAIL_JUNK))
        if (a, b) == (m.start, m.end):
            return [m]
        if a >= b or not _may_be_name(doc.text[a:b]):
            continue
        one_word = not any(c.isspace() for c in doc.text[a:b])
        if len(pieces) > 1 and one_word and (doc.text[a:b].lower() in doc.lower_words
                                             or (broken and _LOWER_NEXT.match(doc.text, b))):
            continue
        out.append(doc.span(m, a, b))
    return out


# A possessive clitic left at a piece's start by the tokeniser ("\u2019s Haqqani").
_CLITIC = re.compile(r"\s*['\u2019][sS]\s+")
# A lower-case word next: the one-word piece before it opens a sentence ("Since the ...").
_LOWER_NEXT = re.compile(r"[ \t]+[a-z]")


# Characters never at a name's edge: spaces, dashes, quotes, bullets ("-Milan" of "ex-Milan").
# A trailing "." stays ("Corp.", "U.S."), and a trailing apostrophe is the possessive rule's.
_LEAD_JUNK = " \t\r\n\f\v-\u2013\u2014'\"\u201c\u201d\u2018\u2019*#\u2022,;:/"
_TRAIL_JUNK = " \t\r\n\f\v-\u2013\u2014\"\u201c\u201d*#\u2022,;:/"


def _may_be_name(s: str) -> bool:
    """Whether `s` has a capital letter, or a letter of a script without case (Arabic, Chinese):
    "83", "182nd" and "crown" are not names."""
    return any(c.isalpha() and not c.islower() for c in s)


_THE = re.compile(r"(?:the|The|THE)\s+(?=\S)")
_SENTENCE_END = re.compile(r"(?:^|[.!?:;\"'\u201c\u201d]\s*|\n\s*)$")


def leading_the(doc: _Doc, m: Mention) -> list[Mention]:
    """A leading "the" is not part of an organisation's, place's, group's or event's name ("the
    Federal Reserve", "the West Bank"), as news style writes it lower-case mid-sentence. A
    capital "The" mid-sentence is part of the name ("The Hague"); at a sentence start it is
    not. Persons are left alone."""
    if m.label not in NAME_LABELS or m.label == "PERSON":
        return [m]
    hit = _THE.match(m.surface)
    if hit is None:
        return [m]
    if m.surface[0] == "T" and not _SENTENCE_END.search(doc.text[max(0, m.start - 3):m.start]):
        return [m]
    return [doc.span(m, m.start + hit.end(), m.end)]


# Titles and roles written before a name ("Prime Minister", "U.S. Assistant Secretary of State",
# "Fullback Andre Joubert"): not part of a person's name, nor of a place's they follow.
_TITLES = frozenset({"president", "vice", "prime", "minister", "secretary", "assistant", "deputy", "ambassador",
                     "envoy", "senator", "governor", "mayor", "general", "cardinal", "archbishop", "bishop",
                     "chief", "foreign", "defence", "defense", "interior", "finance", "trade", "attorney",
                     "judge", "consul", "leader", "king", "queen", "prince", "crown", "premier", "chancellor",
                     "mr", "mrs", "ms", "dr", "sir", "dame", "lord", "lady", "rev", "gen", "col", "lt", "sgt",
                     "capt", "sen", "rep", "gov", "coach", "manager", "captain", "skipper", "striker",
                     "forward", "defender", "midfielder", "goalkeeper", "fullback", "winger", "centre",
                     "flanker", "pitcher", "catcher", "broker", "analyst", "spokesman", "spokeswoman",
                     "director", "chairman", "chairwoman", "editor", "correspondent", "officer"})


# Royal and religious titles: part of how news names those people ("Prince Andrew", "King
# Salman", "Pope Francis"), and a bare first name left by trimming them links to nothing.
_KEPT_TITLES = frozenset({"king", "queen", "prince", "princess", "crown", "emir", "sheikh", "pope"})


def title_prefix(doc: _Doc, m: Mention) -> list[Mention]:
    """A title or role at the start of a person's span ("Fullback Andre Joubert", "Prime
    Minister Jan Kos", "Dr. Ana Li") is not part of the name: spaCy's own convention, which its
    small model does not always keep. Titles are trimmed while a name word remains, up to a
    royal or religious title, which stays ("Crown Prince Mohammed", "King Salman")."""
    if m.label != "PERSON":
        return [m]
    words = list(_WORD.finditer(m.surface))
    k = 0
    while k < len(words) - 1 and (w := words[k].group().rstrip(".").lower()) in _TITLES and w not in _KEPT_TITLES:
        k += 1
    if k == 0:
        return [m]
    return [doc.span(m, m.start + words[k].start(), m.end)]


_POSSESSIVE = re.compile(r"\s*['\u2019](?:s|S)?$")
_NOTHING_POSSESSED = re.compile(r"[ \t]*(?:[,.;:!?\r\n]|$)")


def possessive(doc: _Doc, m: Mention) -> list[Mention]:
    """A trailing possessive ("England's", tokenised "England 's", "Forces'") is not part of
    the name. Followed by punctuation or a line's end, no possessed noun follows: the "'s" is
    the name's own ("shopped at Macy's.", "St. Martin's, a publisher")."""
    if m.label not in NAME_LABELS or _NOTHING_POSSESSED.match(doc.text, m.end):
        return [m]
    hit = _POSSESSIVE.search(m.surface)
    if hit is None or hit.start() == 0:
        return [m]
    if not hit.group().strip("'\u2019 ").lower() and not m.surface[:hit.start()].endswith(("s", "S")):
        return [m]  # a bare apostrophe only after an s: "Forces'", not "O'"
    return [doc.span(m, m.start, m.start + hit.start())]


# --- labels from the context -----------------------------------------------------------------

# Lower-case "news agency" after or before a name: "Interfax news agency said", "the official
# news agency Tanjug". Capitalised, it is part of the name ("Iraqi News Agency").
_AGENCY_AFTER = re.compile(r"\s+(?:news|press)\s+agency\b")
_AGENCY_BEFORE = re.compile(r"\b(?:news|press)\s+agency\s+$")
_AGENCY_INSIDE = re.compile(r"\s+(?:news|press)\s+agency$")
# An adjective before "news agency" is the agency's country, not its name.
_NOT_AGENCY = frozenset({"NORP"})


def agency(doc: _Doc, m: Mention) -> list[Mention]:
    """"Interfax news agency said", "the official news agency Tanjug": the name beside a
    lower-case "news agency" is an organisation, and "news agency" is not part of it. "the
    Yugoslav news agency" (an adjective) and "Iraqi News Agency" (capitalised: the whole
    name) are left alone."""
    if m.label not in NAME_LABELS or m.label in _NOT_AGENCY:
        return [m]
    inside = _AGENCY_INSIDE.search(m.surface)
    if inside is not None:
        name = m.surface[:inside.start()]
        if not any(c.isupper() for c in _THE.sub("", name, count=1)):
            return []  # "the state news agency": no name
        return [doc.span(m, m.start, m.start + inside.start(), "ORG")]
    if m.label != "ORG" and (_AGENCY_AFTER.match(doc.text, m.end)
                             or _AGENCY_BEFORE.search(doc.text, max(0, m.start - 20), m.start)):
        return [doc.span(m, m.start, m.end, "ORG")]
    return [m]


# Words of tables and results that the model takes for names when they head a line or column.
_TABLE_WORDS = frozenset({"attendance", "extras", "men", "women", "gmt", "total", "totals", "scorers",
                          "result", "results", "standings", "note", "halftime", "half-time", "fall",
                          "bowling", "batting", "division", "group", "pct", "pts", "score", "scores",
                          "penalties", "tries", "conversions", "goals", "points", "teams", "telephone",
                          "fax", "tel"})
_ABBREV_ROW = re.compile(r"[A-Z]{1,3}(?:\s+[A-Z]{1,3})+")


def table_word(doc: _Doc, m: Mention) -> list[Mention]:
    """A generic word of results and tables ("Attendance : 200", "Extras", "Men", "GMT") is not
    a name, and nor is a column header of short capitals ("W L PCT GB") on a capitals line or
    a line of numbers; in prose short capitals are call signs and agencies ("CBS DFW
    reports")."""
    if m.label not in NAME_LABELS:
        return [m]
    if m.surface.lower() in _TABLE_WORDS:
        return []
    if _ABBREV_ROW.fullmatch(m.surface) and (doc.is_caps_line(m.start) or _mostly_numbers(doc, m.start)):
        return []
    return [m]


def _mostly_numbers(doc: _Doc, pos: int) -> bool:
    """Whether at least half the words of the line holding text[pos] are numbers."""
    start, end = doc.line(pos)
    words = _WORD.findall(doc.text[start:end])
    return 2 * sum(_SCORE_TOKEN.fullmatch(w) is not None for w in words) >= len(words)


_SCORE_TOKEN = re.compile(r"[-+]?(?:\d+(?:[-:/.]\d+)*|\.\d+)")
_WORD = re.compile(r"\S+")


def _reads_like_results(line: str) -> bool:
    """A line of results or a table: at least two numbers, and no more lower-case words than
    numbers ("Lotte 6 Hyundai 2", "Haitai 64 2 43 .596 -", "Somerset 83 and 174")."""
    numbers = lower = 0
    for w in _WORD.findall(line):
        if _SCORE_TOKEN.fullmatch(w):
            numbers += 1
        elif w[0].islower():
            lower += 1
    return numbers >= 2 and lower <= numbers


# --- added spans -----------------------------------------------------------------------------

# A dateline: a place in capitals at a line's start, then a date ("BELGRADE 1996-08-30",
# "OSLO, March 2") or an agency in brackets and a dash ("WASHINGTON (Reuters) -").
_DATELINE = re.compile(r"^([A-Z][A-Z.'-]+(?:[ \t][A-Z][A-Z.'-]+){0,3})"
                       r"(?:,?[ \t]+(?:\d{4}-\d\d-\d\d|[A-Z][a-z]{2,8}\.?[ \t]+\d{1,2}))?"
                       r"(?:(?<=\d)(?=[ \t]*(?:[-\u2013\u2014]|$))"
                       r"|,?[ \t]*\(([A-Z][\w.&'-]{0,24}(?:[ \t][A-Z][\w.&'-]{0,24}){0,2})\)[ \t]*[-\u2013\u2014])",
                       re.MULTILINE)


def dateline(doc: _Doc, mentions: list[Mention]) -> list[Mention]:
    """A wire dateline, "BELGRADE 1996-08-30" or "WASHINGTON (Reuters) -" at a line's start,
    names a place, and the bracketed name in a byline is the agency that filed the story: the
    model, reading capitals without context, often misses or mislabels them. A mention of
    exactly that span gets GPE (ORG for the agency); one is added where no mention overlaps."""
    text = doc.text
    exact = {(m.start, m.end): i for i, m in enumerate(mentions)}
    covered = _covered(mentions)
    out = list(mentions)
    for hit in _DATELINE.finditer(text):
        for group, label in ((1, "GPE"), (2, "ORG")):
            if hit.start(group) < 0:
                continue
            a, b = hit.span(group)
            new = Mention(start=a, end=b, surface=text[a:b], label=label, canonical="")
            i = exact.get((a, b))
            if i is not None:
                if out[i].label != label:
                    doc.changes.append(Change(RuleName.DATELINE, out[i], new))
                    out[i] = replace(out[i], label=label)
            elif _free(covered, a, b):
                doc.changes.append(Change(RuleName.DATELINE, None, new))
                out.append(new)
    return out


# Labels the model gives names on capitals lines with little better than chance; places are
# mostly right there (datelines, countries in headlines).
_WEAK_ON_CAPS = NAME_LABELS - PLACE_LABELS


def _mixed_case_names(doc: _Doc, mentions: list[Mention]) -> dict[str, str]:
    """{case-folded surface: label} of the name mentions on lines with lower-case letters (the
    first label seen), the names the text itself vouches for."""
    names: dict[str, str] = {}
    for m in mentions:
        if m.label in NAME_LABELS and not doc.is_caps_line(m.start):
            names.setdefault(" ".join(m.surface.split()).casefold(), m.label)
    return names


def caps_line(doc: _Doc, mentions: list[Mention]) -> list[Mention]:
    """On a line without lower-case letters that is not a line of results (a headline, a
    table's heading: "SOCCER - LEAGUE STANDINGS", "EASTERN DIVISION"), the small model has no
    case to go by and its ORG, PERSON, EVENT... labels are mostly wrong: such a mention is
    dropped unless the text writes the same name in mixed case as a mention elsewhere. Places
    are kept (datelines, countries in headlines are mostly right)."""
    vouched = _mixed_case_names(doc, mentions)
    out: list[Mention] = []
    for m in mentions:
        if (m.label in _WEAK_ON_CAPS and doc.is_caps_line(m.start)
                and not doc.is_results_line(m.start)
                and " ".join(m.surface.split()).casefold() not in vouched):
            doc.changes.append(Change(RuleName.CAPS_LINE, m, None))
            continue
        out.append(m)
    return out


_CAP_WORD = re.compile(r"[A-Z][A-Z.'&-]*")
_NOT_CAPS_ECHO = frozenset({"PERSON", "PRODUCT"})
_ECHO_MAX_WORDS = 4


def _free(covered: list[tuple[int, int]], a: int, b: int) -> bool:
    """Whether [a, b) overlaps none of the sorted, non-overlapping spans `covered`."""
    k = bisect_left(covered, (b, b))
    return k == 0 or covered[k - 1][1] <= a


def _covered(mentions: list[Mention]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for a, b in sorted((m.start, m.end) for m in mentions):
        if spans and a < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], b))
        else:
            spans.append((a, b))
    return spans


def caps_echo(doc: _Doc, mentions: list[Mention]) -> list[Mention]:
    """A name in a capitals line ("ROMANIA BEAT LITHUANIA") that the text also writes in mixed
    case as a mention ("Romania") is that name, with its label: the model misses names in
    capitals, which carry no case to go by. Longest match first, at most four words, never over
    another mention. Persons and products are not echoed: in capitals they are mostly product
    and section headings ("FORD MUSTANG MACH E")."""
    vouched = _mixed_case_names(doc, mentions)
    if not vouched:
        return mentions
    covered = _covered(mentions)
    out = list(mentions)
    line_start, text = 0, doc.text
    while line_start <= len(text):
        line_end = text.find("\n", line_start)
        line_end = len(text) if line_end < 0 else line_end
        if doc.is_caps_line(line_start) if line_start < len(text) else False:
            words = [(w.start(), w.end()) for w in _CAP_WORD.finditer(text, line_start, line_end)]
            i = 0
            while i < len(words):
                for n in range(min(_ECHO_MAX_WORDS, len(words) - i), 0, -1):
                    a, b = words[i][0], words[i + n - 1][1]
                    label = vouched.get(" ".join(text[a:b].split()).casefold())
                    if label is not None and label not in _NOT_CAPS_ECHO and _free(covered, a, b) and (
                            b == len(text) or not text[b].isalnum()):
                        new = Mention(start=a, end=b, surface=text[a:b], label=label, canonical="")
                        doc.changes.append(Change(RuleName.CAPS_ECHO, None, new))
                        out.append(new)
                        i += n - 1
                        break
                i += 1
        line_start = line_end + 1
    return out


_SURNAME = r"(?:[A-Z][a-z]+|[A-Z]'[A-Z][a-z]+|Mc[A-Z][a-z]+|Mac[A-Z][a-z]+)(?:-[A-Z][a-z]+)?"
_INITIALS_NAME = re.compile(rf"[A-Z]\.[ \t]?({_SURNAME})(?![\w'])")
# A place's abbreviation looks like an initial ("N. Korea", "S. Africa"): what the model calls
# a place or a people there is left alone.
_NOT_INITIAL_NAME = frozenset({"PERSON", "GPE", "LOC", "NORP"})
_CAPITALISED_BEFORE = re.compile(r"[A-Z][\w'-]*[ \t]+$")


def initial_name(doc: _Doc, mentions: list[Mention]) -> list[Mention]:
    """An initial and a surname ("P. Smith", "J. O'Neill"), the way results, scoreboards and
    bylines write players and people, is a person: a mention of exactly that span becomes
    PERSON, a mention of the initial alone grows over the surname, and one the model missed
    is added. After a capitalised word ("Group B. Germany") it may be a sentence's end, and is
    left alone; so are surnames under three letters and matches after a hyphen (party-state
    tags: "Rep. Ann Lee, D-N.Y.", "R-W.Va.")."""
    text = doc.text
    exact = {(m.start, m.end): i for i, m in enumerate(mentions)}
    covered = _covered(mentions)
    out = list(mentions)
    dropped: set[int] = set()
    for hit in _INITIALS_NAME.finditer(text):
        a, b = hit.span()
        if (a and (text[a - 1].isalnum() or text[a - 1] in ".'-")) or (b < len(text) and text[b].isalnum()):
            continue  # inside a word, or a party-state tag ("R-W.Va.")
        if sum(c.isalpha() for c in hit.group(1)) < 3:
            continue  # "W.Va", "N.Ho": abbreviations more often than surnames
        if _CAPITALISED_BEFORE.search(text, max(0, a - 30), a):
            continue
        new = Mention(start=a, end=b, surface=text[a:b], label="PERSON", canonical="")
        i = exact.get((a, b))
        if i is not None:
            if out[i].label not in _NOT_INITIAL_NAME and out[i].label in NAME_LABELS:
                doc.changes.append(Change(RuleName.INITIAL_NAME, out[i], new))
                out[i] = replace(out[i], label="PERSON")
            continue
        inside = [exact[s] for s in _overlapping(covered, a, b) if s in exact]
        if not inside and _free(covered, a, b):
            doc.changes.append(Change(RuleName.INITIAL_NAME, None, new))
            out.append(new)
        elif len(inside) == 1 and out[inside[0]].start == a and out[inside[0]].end < b \
                and re.fullmatch(r"[A-Z]\.", out[inside[0]].surface) is not None:
            doc.changes.append(Change(RuleName.INITIAL_NAME, out[inside[0]], new))
            dropped.add(inside[0])
            out.append(new)
    return [m for i, m in enumerate(out) if i not in dropped]


def _overlapping(covered: list[tuple[int, int]], a: int, b: int) -> list[tuple[int, int]]:
    """The spans of `covered` (sorted, non-overlapping) that overlap [a, b)."""
    k = bisect_left(covered, (a, a))
    if k and covered[k - 1][1] > a:
        k -= 1
    found = []
    while k < len(covered) and covered[k][0] < b:
        found.append(covered[k])
        k += 1
    return found


_COMPETITOR_LABELS = frozenset({"ORG", "GPE", "NORP", "FAC", "LOC", "PRODUCT", "WORK_OF_ART", "LAW"})
_CORPORATE = re.compile(r"\b(?:Inc|Corp|Co|Ltd|Plc|PLC|AG|SA|NV|LLC|Group|Bank|Club|FC|United|City)\.?$")


# Words of companies' names, anywhere in the name ("Groupe Laval (France)"), and all-capitals
# words ("ACME Studios") are not a person's.
_COMPANY_WORDS = frozenset({"Group", "Groupe", "Studio", "Studios", "Inc", "Ltd", "Corp", "Company", "Holdings",
                            "Bank"})
_NAME_BEFORE_BRACKET = re.compile(r"([A-Z][\w'.-]+(?:[ \t][A-Z][\w'.-]+){1,3})[ \t]*\([ \t]*$")
# What may stand before a competitor's name in a list: a line start, a rank ("1.", "1=", "8 -"),
# a comma or semicolon, a closing bracket, or the word "beat", "and", "v"/"vs".
_LIST_BEFORE = re.compile(r"(?:^|\n|[,;:=.)\d-]|\b(?:beat|and|vs?|def))[ \t]*$")


def competitor(doc: _Doc, mentions: list[Mention]) -> list[Mention]:
    """A full name followed by a place in brackets ("Jane Doe (Kenya)", "Ivan Petrov ( Russia
    )"), as results and start lists write athletes, is a person: the model, seeing no
    sentence, labels such names ORG or misses them. A mention of exactly the name becomes
    PERSON; one is added where none overlaps and the name starts a list item (after a line
    start, a rank, a comma, "beat"). Names of companies and clubs ("... Corp", "... City",
    "Groupe ...", a word in capitals) are left alone."""
    text = doc.text
    exact = {(m.start, m.end): i for i, m in enumerate(mentions)}
    covered = _covered(mentions)
    out = list(mentions)
    for place in mentions:
        if place.label not in {"GPE", "LOC", "NORP"} or not re.match(r"[ \t]*\)", text[place.end:place.end + 3]):
            continue
        hit = _NAME_BEFORE_BRACKET.search(text, max(0, place.start - 80), place.start)
        if hit is None or _CORPORATE.search(hit.group(1)) or any(
                w.rstrip(".") in _COMPANY_WORDS or (sum(c.isalpha() for c in w) >= 2 and w.isupper())
                for w in hit.group(1).split()):
            continue
        a, b = hit.span(1)
        i = exact.get((a, b))
        new = Mention(start=a, end=b, surface=text[a:b], label="PERSON", canonical="")
        if i is not None:
            if out[i].label in _COMPETITOR_LABELS:
                doc.changes.append(Change(RuleName.COMPETITOR, out[i], new))
                out[i] = replace(out[i], label="PERSON")
        elif _free(covered, a, b) and _LIST_BEFORE.search(text, max(0, a - 8), a):
            doc.changes.append(Change(RuleName.COMPETITOR, None, new))
            out.append(new)
    return out


# Capitalised words before a surname that are not first names: sentence openers and titles.
_NOT_FIRST = frozenset({"the", "a", "an", "but", "and", "or", "if", "when", "while", "after", "before", "as",
                        "at", "in", "on", "of", "for", "with", "by", "from", "to", "since", "then", "so",
                        "he", "she", "they", "it", "we", "i", "his", "her", "their", "this", "that", "there",
                        "both", "only", "even", "also", "said", "says", "mr", "mrs", "ms", "dr", "sir", "lord",
                        "lady", "dame", "saint", "st", "coach", "captain", "striker", "defender", "midfielder",
                        "manager", "rookie", "veteran", "champion", "seed", "no", "not", "all", "former",
                        "new", "old", "young", "today", "yesterday", "tonight", "here", "where", "what",
                        "who", "how", "why", "because", "although", "though", "until", "unlike", "like",
                        "without", "against", "under", "over", "about", "among", "between",
                        "during", "despite", "through", "via", "per", "than", "yet", "nor", "each", "every",
                        "some", "many", "most", "several", "other", "another", "such", "these", "those",
                        "instead", "meanwhile", "however", "still", "now", "later", "earlier",
                        "again", "once", "twice", "indeed", "perhaps", "maybe", "already"}
                       | _TITLES)
# What stands before a word that opens a sentence or a quotation on its line.
_OPENS = re.compile(r"(?:[.!?][\"'\u201d\u2019)]?[ \t]+|[\"\u201c\u2018][ \t]*)$")
_WORD_BEFORE = re.compile(r"(?:^|(?<=[\s(\"\u201c]))([A-Z][a-z]+(?:-[A-Z][a-z]+)?)[ \t]+$")


def first_name(doc: _Doc, mentions: list[Mention]) -> list[Mention]:
    """A person mention right after a capitalised word that no mention covers ("Maria Lopez"
    where the model took only "Lopez") starts at that word, the first name: the small model
    often keeps only the surname of names it does not know. Sentence openers and titles
    ("But", "Coach", "President") are not first names, nor is any word that opens a sentence
    or a quotation ("Rival Lowe's", "\u201cMake Trump"); a line's first word may be one."""
    text = doc.text
    covered = _covered(mentions)
    out: list[Mention] = []
    for m in mentions:
        if m.label == "PERSON" and " " not in m.surface:
            hit = _WORD_BEFORE.search(text, max(0, m.start - 40), m.start)
            if (hit is not None and hit.group(1).lower() not in _NOT_FIRST and _free(covered, *hit.span(1))
                    and not _OPENS.search(text, doc.line(hit.start(1))[0], hit.start(1))):
                new = doc.span(m, hit.start(1), m.end)
                doc.changes.append(Change(RuleName.FIRST_NAME, m, new))
                m = new
        out.append(m)
    return out


_ACRONYM_AFTER = re.compile(r"[ \t]*\([ \t]*([A-Z][A-Z&.-]{1,9})[ \t]*\)")
_ACRONYM_LABELS = frozenset({"ORG", "GPE", "LOC", "FAC", "NORP", "EVENT", "LAW", "PRODUCT"})


def _initials(name: str) -> str:
    return "".join(w[0] for w in re.findall(r"[A-Za-z][\w'-]*", name) if w[0].isupper())


def acronym(doc: _Doc, mentions: list[Mention]) -> list[Mention]:
    """An acronym in brackets right after a name whose capitals it spells ("Kurdistan
    Democratic Party ( KDP )", "the World Health Organization (WHO)") is that name's short
    form, with its label: the model misses acronyms or labels them apart."""
    text = doc.text
    exact = {(m.start, m.end): i for i, m in enumerate(mentions)}
    covered = _covered(mentions)
    out = list(mentions)
    for m in mentions:
        if m.label not in _ACRONYM_LABELS:
            continue
        hit = _ACRONYM_AFTER.match(text, m.end)
        if hit is None:
            continue
        letters = hit.group(1).replace(".", "").replace("-", "")
        initials = _initials(m.surface)
        if len(letters) < 2 or letters[0] != initials[:1] or not set(letters) <= set(initials) | {"&"}:
            continue
        a, b = hit.span(1)
        new = Mention(start=a, end=b, surface=text[a:b], label=m.label, canonical="")
        i = exact.get((a, b))
        if i is not None:
            if out[i].label != m.label:
                doc.changes.append(Change(RuleName.ACRONYM, out[i], new))
                out[i] = replace(out[i], label=m.label)
        elif _free(covered, a, b):
            doc.changes.append(Change(RuleName.ACRONYM, None, new))
            out.append(new)
    return out


_CAPITALISED_AFTER = re.compile(r"[ \t]+[A-Z]")
_MIXED_WORD = re.compile(r"[A-Z][\w'.&-]*")


def _name_like(word: str) -> bool:
    """A capitalised word of letters (inner apostrophes and hyphens allowed: "O'Neill",
    "Jean-Luc"), not in capitals: a person's name word, unlike "D.", "Wi-Fi5", "NASA"."""
    letters = word.replace("'", "").replace("\u2019", "").replace("-", "")
    return len(letters) >= 2 and letters.isalpha() and word[0].isupper() and not letters.isupper()


def name_echo(doc: _Doc, mentions: list[Mention]) -> list[Mention]:
    """The surname of a person the text names in full ("Lebed said" after "Alexander Lebed")
    is that person again where the model missed it: news names a person in full once, then by
    surname. Only full names whose every word is name-like, only their last word, always as
    PERSON; other names are not echoed (the model's one-off mislabels would be copied to every
    occurrence: a recipe's "Eat" as ORG, "Wi-Fi" as PERSON). Whole capitalised words only,
    never over another mention nor beside another capitalised word (part of a longer name,
    "Minnesota Twins"), and only if the text never writes the word in lower case ("Rose" the
    person, not "Rose sharply")."""
    text = doc.text
    surnames: set[str] = set()
    for m in mentions:
        words = m.surface.split()
        if m.label == "PERSON" and len(words) >= 2 and len(words[-1]) >= 3 and all(map(_name_like, words)):
            surnames.add(words[-1])
    if not surnames:
        return mentions
    covered = _covered(mentions)
    out = list(mentions)
    for w in _MIXED_WORD.finditer(text):
        a, b = w.span()
        surface = w.group()
        if surface not in surnames or (a and (text[a - 1].isalnum() or text[a - 1] in "'-")) \
                or (b < len(text) and (text[b].isalnum() or text[b] in "-")) \
                or not _free(covered, a, b) or surface.lower() in doc.lower_words or doc.is_caps_line(a):
            continue
        before = _CAPITALISED_BEFORE.search(text, max(0, a - 30), a)
        if before is not None and not _SENTENCE_END.search(text[max(0, before.start() - 3):before.start()]):
            continue  # after another capitalised word: part of a longer name
        if _CAPITALISED_AFTER.match(text, b):
            continue  # before one: "Minnesota Twins", "Dow Jones"
        new = Mention(start=a, end=b, surface=surface, label="PERSON", canonical="")
        doc.changes.append(Change(RuleName.NAME_ECHO, None, new))
        out.append(new)
    return out


# --- the driver ------------------------------------------------------------------------------

SpanRule = Callable[[_Doc, Mention], list[Mention]]
TextRule = Callable[[_Doc, list[Mention]], list[Mention]]

SPAN_RULES: tuple[tuple[RuleName, SpanRule], ...] = (
    (RuleName.AGENCY, agency),
    (RuleName.SPLIT_SPAN, split_span),
    (RuleName.LEADING_THE, leading_the),
    (RuleName.TITLE_PREFIX, title_prefix),
    (RuleName.POSSESSIVE, possessive),
    (RuleName.TABLE_WORD, table_word),
)
TEXT_RULES: tuple[tuple[RuleName, TextRule], ...] = (
    (RuleName.DATELINE, dateline),
    (RuleName.CAPS_LINE, caps_line),
    (RuleName.CAPS_ECHO, caps_echo),
    (RuleName.INITIAL_NAME, initial_name),
    (RuleName.COMPETITOR, competitor),
    (RuleName.FIRST_NAME, first_name),
    (RuleName.ACRONYM, acronym),
    (RuleName.NAME_ECHO, name_echo),
)


def _valid(text: str, m: Mention) -> bool:
    return 0 <= m.start < m.end <= len(text) and text[m.start:m.end] == m.surface


def explain(text: str, mentions: Sequence[Mention], *,
            skip: Iterable[RuleName] = ()) -> tuple[list[Mention], list[Change]]:
    """The mentions after the rules, sorted by offset, one per span (the first kept), and each
    change with the rule that made it. Mentions whose offsets do not match the text are passed
    through untouched and unseen by the rules."""
    skipped = frozenset(skip)
    doc = _Doc(text)
    current = sorted((m for m in mentions if _valid(text, m)), key=lambda m: (m.start, m.end))
    untouched = [m for m in mentions if not _valid(text, m)]
    for name, rule in SPAN_RULES:
        if name in skipped:
            continue
        out: list[Mention] = []
        for m in current:
            new = rule(doc, m)
            if len(new) != 1 or new[0] is not m:
                if not new:
                    doc.changes.append(Change(name, m, None))
                for n in new:
                    doc.changes.append(Change(name, m, n))
            out.extend(new)
        current = out
    for name, text_rule in TEXT_RULES:
        if name not in skipped:
            current = text_rule(doc, current)
    seen: set[tuple[int, int]] = set()
    result: list[Mention] = []
    for m in sorted([*current, *untouched], key=lambda m: (m.start, m.end)):
        if (m.start, m.end) not in seen:
            seen.add((m.start, m.end))
            result.append(m)
    return result, doc.changes


def apply(text: str, mentions: Sequence[Mention], *, skip: Iterable[RuleName] = ()) -> list[Mention]:
    """The mentions of `text` with the rules applied (see `explain`); `skip` turns rules off
    (for measuring each one)."""
    return explain(text, mentions, skip=skip)[0]
