"""pipeline/data/wikidata_reference.tsv, the hand-checked Wikidata ids, against everything that
writes one: the gazetteer and the place names (places.yaml; their ids become entity keys in the
database), the docs, the tests and the benches.

The docs, tests and benches are read, not run: a Q-id is checked against the names written
next to it. In Python that is the smallest expression around the id that also names a
gazetteer or places.yaml entry with an id (a tuple, a call, one dict entry, a comparison, a
string); in other files, its line. Where such a neighbourhood names some of those entities, the id must be
the reference id of one of them: `("Recep Tayyip Erdoğan", "PERSON", "Q1")` fails,
`("Idlib", "GPE", "Q188863")` is not checked (places.yaml gives Idlib no id), and
`entity_key("X", "Q1")` names nobody. A line that writes an old id on purpose (a migration's
test) says `wikidata: superseded` in a comment.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipeline.config import PACKAGE_DATA
from pipeline.nlp import load_gazetteer
from pipeline.text import fold

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = PACKAGE_DATA / "wikidata_reference.tsv"
GAZETTEER = PACKAGE_DATA / "gazetteer.yaml"
PLACES = PACKAGE_DATA / "places.yaml"
QID = re.compile(r"(?<![A-Za-z0-9_])Q[1-9][0-9]*(?![0-9])")
SUPERSEDED = "wikidata: superseded"


@dataclass(frozen=True, slots=True)
class Item:
    qid: str
    label: str
    description: str


def _reference() -> list[Item]:
    lines = [ln for ln in REFERENCE.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines and lines[0].split("\t") == ["id", "label", "description"], "the header row is id, label, description"
    items = []
    for n, line in enumerate(lines[1:], 2):
        cells = line.split("\t")
        assert len(cells) == 3, f"row {n} ({line!r}) has {len(cells)} tab-separated cells, not 3"
        items.append(Item(*cells))
    return items


def test_the_reference_is_well_formed():
    items = _reference()
    for it in items:
        assert re.fullmatch(r"Q[1-9][0-9]*", it.qid), it
        assert it.label and it.label == it.label.strip(), it
        assert it.description.strip() and it.description == it.description.strip(), it
    qids = [it.qid for it in items]
    assert len(qids) == len(set(qids)), "an id is listed twice"
    labels = [fold(it.label) for it in items]
    assert len(labels) == len(set(labels)), "two ids share a label"


@dataclass(frozen=True, slots=True)
class Named:
    """A gazetteer or places.yaml entry, as far as ids go."""
    name: str
    forms: tuple[str, ...]  # the name and aliases (and the gazetteer's weapon plurals)
    wikidata_id: str | None
    case_sensitive: bool
    source: str


def _named() -> list[Named]:
    """The gazetteer's entries (through its loader) and places.yaml's (read as YAML: its loader,
    pipeline.places, has its own tests)."""
    out = [Named(e.name, e.aliases, e.wikidata_id, e.case_sensitive, GAZETTEER.name)
           for e in load_gazetteer(GAZETTEER).entries]
    places = yaml.safe_load(PLACES.read_text(encoding="utf-8"))["places"]
    return out + [Named(e["name"], (e["name"], *(e.get("aliases") or ())), e.get("wikidata"),
                        bool(e.get("case_sensitive")), PLACES.name) for e in places]


def test_every_gazetteer_and_place_id_is_in_the_reference_under_its_name():
    reference = {it.qid: it for it in _reference()}
    entries = [e for e in _named() if e.wikidata_id]
    assert {e.source for e in entries} == {GAZETTEER.name, PLACES.name}
    for e in entries:
        assert e.wikidata_id in reference, f"{e.name}: {e.wikidata_id} is not in {REFERENCE.name}; check it and add it"
        assert reference[e.wikidata_id].label == e.name, \
            f"{e.wikidata_id} is {reference[e.wikidata_id].label!r} in {REFERENCE.name} but {e.name!r} in {e.source}"


# --- Q-ids written in the docs, tests and benches -----------------------------------------------

class Names:
    """Finds gazetteer and places.yaml names in text: every entry's name and aliases, longest
    first, so "Idlib Governorate" is not read as "Idlib"; case-sensitive entries ("US", "Turkey")
    only in their case."""

    def __init__(self) -> None:
        self.qid: dict[str, str | None] = {}  # folded form -> the entry's id (None: an entry without one)
        plain, exact = set(), set()
        for e in _named():
            for form in {e.name, *e.forms}:
                key = fold(form, lower=not e.case_sensitive)
                self.qid[key] = e.wikidata_id
                (exact if e.case_sensitive else plain).add(key)
        self._plain = self._pattern(plain, re.IGNORECASE)
        self._exact = self._pattern(exact, 0)

    @staticmethod
    def _pattern(forms: set[str], flags: int) -> re.Pattern:
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", flags)

    def named(self, *texts: str) -> list[str | None]:
        """The entities `texts` name, each as its id (None: an entry without one)."""
        out: list[str | None] = []
        for text in texts:
            found: list[tuple[int, int, str | None]] = []
            for pattern, lower in ((self._plain, True), (self._exact, False)):
                folded = fold(text, lower=lower)
                found += [(m.start(), m.end(), self.qid[m.group(0).lower() if lower else m.group(0)])
                          for m in pattern.finditer(folded)]
            taken: list[tuple[int, int]] = []
            for start, end, qid in sorted(found, key=lambda f: (f[0], -f[1])):
                if not any(start < e and s < end for s, e in taken):
                    taken.append((start, end))
                    out.append(qid)
        return out


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    line: int
    qid: str
    named: frozenset[str]  # the ids of the entities its neighbourhood names
    context: str


def _strings(*nodes: ast.AST | None) -> list[str]:
    return [n.value for node in nodes if node is not None for n in ast.walk(node)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _neighbourhood(node: ast.Constant, parent: dict[ast.AST, ast.AST], names: Names) -> list[str | None]:
    """What the smallest expression around `node` that names anything names: the string itself,
    else its dict entry (key and value), else each enclosing expression up to the statement."""
    named = names.named(node.value)
    here: ast.AST = node
    while not named and not isinstance(here, ast.stmt) and here in parent:
        up = parent[here]
        if isinstance(up, ast.Dict):
            i = next(i for i, (k, v) in enumerate(zip(up.keys, up.values, strict=True)) if here in (k, v))
            named = names.named(*_strings(up.keys[i], up.values[i]))
            if named:
                break
        here = up
        named = names.named(*_strings(here))
    return named


def _python(path: Path, source: str, names: Names) -> list[Written]:
    lines = source.splitlines()
    parent: dict[ast.AST, ast.AST] = {}
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parent[child] = node
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and QID.search(node.value)):
            continue
        if node.end_lineno != node.lineno:  # a docstring, a query: prose, read line by line
            out += _text(path, node.value, names, first_line=node.lineno)
        elif SUPERSEDED not in lines[node.lineno - 1]:
            ids = frozenset(q for q in _neighbourhood(node, parent, names) if q)
            out += [Written(path, node.lineno, qid, ids, lines[node.lineno - 1].strip())
                    for qid in QID.findall(node.value)]
    # Comments, line by line as in other files.
    comments = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    return out + [w for t in comments for w in _text(path, t.string, names, first_line=t.start[0])]


def _text(path: Path, source: str, names: Names, *, first_line: int = 1) -> list[Written]:
    return [Written(path, n, qid, frozenset(q for q in names.named(line) if q), line.strip())
            for n, line in enumerate(source.splitlines(), first_line) if SUPERSEDED not in line
            for qid in QID.findall(line)]


def _written_ids() -> list[Written]:
    names = Names()
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    paths += sorted(p for d in ("tests", "bench") for p in (ROOT / d).rglob("*") if p.is_file())
    paths.remove(Path(__file__).resolve())  # its examples are wrong on purpose
    out = []
    for path in paths:
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary fixtures (a PDF)
        out += (_python if path.suffix == ".py" else _text)(path, source, names)
    return out


def test_ids_written_beside_a_name_are_that_names_reference_id():
    reference = {it.qid for it in _reference()}
    written = _written_ids()
    assert any(w.named for w in written), "the scan found no id beside a name: it is broken"
    wrong = [f"{w.path.relative_to(ROOT)}:{w.line}: {w.qid} beside {sorted(w.named)}: {w.context}"
             for w in written if w.named and w.qid not in w.named]
    assert not wrong, "ids that are not the reference id of the names beside them:\n" + "\n".join(wrong)
    # And the ids so checked are the reference's (the gazetteer's and places.yaml's ids are all in
    # it, tested above).
    assert {q for w in written if w.named for q in w.named} <= reference


@pytest.mark.parametrize(("source", "wrong"), [
    ('ENTITIES = {"Erdoğan": ("Recep Tayyip Erdoğan", "PERSON", "Q39723")}', True),
    ('ids = {"Recep Tayyip Erdogan": "Q39723", "Vladimir Putin": "Q7747"}', True),
    ('ids = {"Recep Tayyip Erdogan": "Q39259", "Vladimir Putin": "Q7747"}', False),
    ('m = Mention(surface="Erdoğan", canonical="Recep Tayyip Erdoğan",\n            wikidata_id="Q39723")', True),
    ('assert ids["Vladimir Putin"] == "Q39259"', True),
    ('assert ids["Vladimir Putin"] == "Q7747" and ids["Recep Tayyip Erdoğan"] == "Q39259"', False),
    ('x = ("Idlib", "GPE", "Q188863")', False),  # no id in places.yaml: not checked
    ('x = ("Idlib Governorate", "GPE", "Q1")', False),  # not "Idlib" and not checked either
    ('x = entity_key("X", "Q1")', False),
    ('q = "SELECT 1 WHERE wikidata_id = \'Q7747\' -- Vladimir Putin"', False),
    ('q = "SELECT 1 WHERE wikidata_id = \'Q1\' -- Vladimir Putin"', True),
    ('_entity(c, "Q39723", "Recep Tayyip Erdoğan", "PERSON", "Q39723")  # wikidata: superseded', False),
])
def test_the_scan_pairs_ids_with_the_names_beside_them(source, wrong):
    found = _python(Path("x.py"), source, Names())
    assert any(w.named and w.qid not in w.named for w in found) is wrong, found


def test_text_files_are_checked_line_by_line():
    found = _text(Path("x.md"), "-- (Q39259 Recep Tayyip Erdoğan, Q7747 Vladimir Putin)\n"
                                "| Erdoğan | Q39723 |\nWHERE wikidata_id IN ('Q1')\n", Names())
    assert [(w.line, w.qid, w.qid in w.named) for w in found if w.named] == [
        (1, "Q39259", True), (1, "Q7747", True), (2, "Q39723", False)]
