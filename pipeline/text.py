"""Text: what a stranger's bytes may not carry into the database, and the one folding rule.

Postgres refuses NUL in text and psycopg cannot encode lone surrogates (a feed's `&#55296;`
or a page's broken escape). Everything that enters the database as text passes `safe_text`
(store.db.clean calls it), with a length cap where the field has one.
"""

from __future__ import annotations

import re
import unicodedata

# NUL (Postgres refuses it in text) and lone surrogates (no UTF-8 encoding exists for them).
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def safe_text(text: str | None, limit: int | None = None) -> str | None:
    """`text` without NUL and lone surrogates, cut to `limit` characters."""
    if text is None:
        return None
    if not isinstance(text, str):
        text = str(text)
    text = _UNSAFE.sub("", text)
    if limit is not None and len(text) > limit:
        text = text[:limit]
    return text


def truncate_utf8(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, cut at a character boundary (for indexed columns)."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore")


# --- folding: one rule for names, entity keys, topic terms and full-text search -------------
#
# fold() is character by character: each character maps to a fixed string, so the same rule
# can be written in SQL. `newsroom_fold` (the function the `search` column and every search
# query use) is generated from the tables below by `sql_fold_function()` and lands as a
# migration; tests/integration/test_fold.py checks on a corpus of names that Python and the
# database agree. Changing a table here means a new migration with the new function (and a
# rewrite of the search column, and a REINDEX of the entity look-up indexes built on it:
# entities_names_idx and entities_surname_idx, migration 0005), never an edit of a landed one.

# Letters Unicode decomposition leaves alone (ø, ł, ß, æ, ı ...) and punctuation variants.
# Sources: the Latin letters of the languages news names come from (Nordic, Polish, Croatian,
# German, Turkish, Azerbaijani, Icelandic, Maltese) and the apostrophes and primes of
# transliterations (ʿ ʾ ʻ ʹ for Arabic ayn/hamza and the Cyrillic soft sign).
FOLD_MAP: dict[str, str] = {
    "ı": "i", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H",
    "ð": "d", "Ð": "D", "ŧ": "t", "Ŧ": "T", "ə": "a", "Ə": "A", "ŋ": "n", "Ŋ": "N",
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "TH",
    "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u02bf": "'", "\u02be": "'", "\u02bb": "'",
    "\u02b9": "'", "\u2032": "'", "`": "'", "\u00b4": "'", "\u201c": '"', "\u201d": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ",
}
# Combining marks dropped after NFKD decomposition: Latin/Greek/Cyrillic diacritics (and their
# extensions), Hebrew points, Arabic harakat. Marks that are letters' vowels in other scripts
# (Indic viramas, Thai) are kept: dropping them changes the word.
COMBINING_RANGES: tuple[tuple[int, int], ...] = (
    (0x0300, 0x036F), (0x0483, 0x0489), (0x0591, 0x05BD), (0x05BF, 0x05BF), (0x05C1, 0x05C2),
    (0x05C4, 0x05C5), (0x05C7, 0x05C7), (0x0610, 0x061A), (0x064B, 0x065F), (0x0670, 0x0670),
    (0x06D6, 0x06DC), (0x06DF, 0x06E4), (0x06E7, 0x06E8), (0x06EA, 0x06ED), (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F),
)
_FOLD_TABLE = str.maketrans(FOLD_MAP)
# One bracket expression for both: Python's re and Postgres's regular expressions read \uXXXX alike.
_MARKS = "[" + "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in COMBINING_RANGES) + "]+"
_COMBINING = re.compile(_MARKS)


def fold(text: str, *, lower: bool = True) -> str:
    """Accent-fold (Erdoğan -> Erdogan, Sørensen -> Sorensen, Łódź -> Lodz), unify quotes and
    dashes, and (by default) case-fold. `fold(s, lower=False)` is what SQL's newsroom_fold(s)
    returns."""
    if lower:
        text = text.casefold()
    text = unicodedata.normalize("NFKD", text.translate(_FOLD_TABLE))
    return _COMBINING.sub("", text).translate(_FOLD_TABLE)


def name_key(name: str) -> str:
    """The matching key of a name: folded, letters and digits only. "Deir ez-Zor", "Deir Ezzor"
    and "deir-ez-zor" all give "deirezzor"; "Hay'at Tahrir al-Sham" gives "hayattahriralsham"."""
    return "".join(c for c in fold(name) if c.isalnum())


def entity_key(name: str, wikidata_id: str | None = None) -> str:
    """The natural key of an entity: its Wikidata id where known, else its folded name. The
    label is not part of it, so an entity the model calls GPE in one article and LOC in the next
    (or that the gazetteer relabels) stays one row; its label is on each mention. SQL's
    newsroom_entity_key(name, wikidata_id) is the same rule (migration 0004)."""
    if wikidata_id:
        return wikidata_id
    # A name that folds to nothing (marks only) keeps its own spelling rather than joining them all.
    return "name:" + (" ".join(fold(name).split()) or " ".join(name.split()))


def _sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _sql_map(expr: str) -> str:
    """SQL applying FOLD_MAP to `expr`: replace() for the letters that become two, translate()
    for the rest."""
    for src, dst in FOLD_MAP.items():
        if len(dst) != 1:
            expr = f"replace({expr}, {_sql_literal(src)}, {_sql_literal(dst)})"
    single = {s: d for s, d in FOLD_MAP.items() if len(d) == 1}
    return f"translate({expr}, {_sql_literal(''.join(single))}, {_sql_literal(''.join(single.values()))})"


def sql_fold_function() -> str:
    """CREATE OR REPLACE FUNCTION newsroom_fold: fold(s, lower=False) in SQL (normalize() is
    Postgres's NFKD; the bracket expression is COMBINING_RANGES)."""
    body = _sql_map(f"regexp_replace(normalize({_sql_map('$1')}, NFKD), '{_MARKS}', '', 'g')")
    return ("CREATE OR REPLACE FUNCTION newsroom_fold(text) RETURNS text\n"
            "    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE\n"
            f"    AS $$ SELECT {body} $$;\n")


_HONORIFICS = re.compile(r"^(?:mr|mrs|ms|dr|sen|gen|rep)\.?\s+", re.IGNORECASE)
_POSSESSIVE = re.compile(r"(?:['\u2019]s|(?<=s)['\u2019])$", re.IGNORECASE)
_EDGE_PUNCT = " \t\r\n\"'()[]{}<>,;:.!?\u201c\u201d\u2018\u2019«»"


def clean_name(surface: str) -> str:
    """A display form of a mention: collapsed whitespace, no leading "the"/honorific, no
    possessive "'s". "the Syrian Democratic Forces'" -> "Syrian Democratic Forces"."""
    name = " ".join(surface.split()).strip(_EDGE_PUNCT.replace(".", ""))
    name = _POSSESSIVE.sub("", name)
    if name.lower().startswith("the ") and len(name) > 4:
        name = name[4:]
    name = _HONORIFICS.sub("", name)
    name = name.strip(_EDGE_PUNCT.replace(".", ""))
    return name or surface.strip()


if __name__ == "__main__":  # python -m pipeline.text: the SQL for a new migration
    print(sql_fold_function(), end="")
