"""bench/link_eval.py's pure parts: the Wilson interval, the sample (reproducible, linked GPE/LOC
only, one clean line per row) and precision read back from a labelled TSV."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.records import Mention

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import link_eval


def test_wilson_interval():
    lo, hi = link_eval.wilson(186, 200)
    assert (round(lo, 3), round(hi, 3)) == (0.886, 0.958)
    assert link_eval.wilson(0, 0) == (0.0, 1.0)
    assert link_eval.wilson(5, 5)[1] == 1.0


def _m(start: int, surface: str, label: str = "GPE", qid: str | None = "Q1") -> Mention:
    return Mention(start=start, end=start + len(surface), surface=surface, label=label, canonical=surface,
                   wikidata_id=qid)


def test_sample_is_reproducible_and_takes_linked_places_only(tmp_path):
    texts = ["In Paris\tand\nLyon, Acme said.", "Rome."]
    tagged = [[_m(3, "Paris"), _m(14, "Lyon", qid=None), _m(20, "Acme", label="ORG")], [_m(0, "Rome", label="LOC")]]
    rows = link_eval.sample_rows(texts, tagged, 5, seed=16)
    assert [r[2] for r in rows] == ["Paris", "Rome"]
    assert link_eval.sample_rows(texts, tagged, 1, seed=3) == link_eval.sample_rows(texts, tagged, 1, seed=3)
    assert rows[0][4] == " and⏎Lyon, Acme said."  # tab gone, newline marked
    path = tmp_path / "s.tsv"
    link_eval.write_tsv(path, rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and all(line.count("\t") == len(link_eval.COLUMNS) - 1 for line in lines)


def test_precision_from_labels(tmp_path):
    rows = [[str(i), "0", "X", "", "", "GPE", "X", "", "", "", "", rule, mark, note]
            for i, (rule, mark, note) in enumerate([("single", "y", ""), ("single", "n", "a team"),
                                                    ("gazetteer", "y", "metonymy"), ("gazetteer", "", "")])]
    path = tmp_path / "s.tsv"
    link_eval.write_tsv(path, rows)
    prec = link_eval.precision(link_eval.read_tsv(path))
    assert prec["overall"]["correct"] == 2 and prec["overall"]["labelled"] == 3
    assert prec["overall"]["unlabelled"] == 1
    assert prec["by_rule"]["single"]["precision"] == 0.5
    assert [w["note"] for w in prec["wrong"]] == ["a team"]
    assert prec["correct_with_note"] == {"metonymy": 1}
