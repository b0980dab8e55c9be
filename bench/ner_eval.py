"""Entity recognition quality on the CoNLL-2003 English dev split in shared/data/ner-dev, with
the metric its README fixes (so the figure compares with the issue's):

- each document rebuilt as text: tokens joined by one space, sentences by one newline;
- gold spans: character offsets of PER, ORG and LOC entities (MISC dropped);
- predicted: the tagger's mentions (pipeline.nlp.tag_entities, the gazetteer included) with
  PERSON -> PER, ORG -> ORG, GPE and LOC -> LOC, other labels dropped;
- micro-averaged F1 over exact (start, end, label) matches, and F1 per label.

    .venv/bin/python bench/ner_eval.py                       # prints the table
    .venv/bin/python bench/ner_eval.py --save after          # also bench/results/ner_eval.json
    .venv/bin/python bench/ner_eval.py --errors 40           # the commonest mistakes, to read

The set is read in place (never copied) and only measured with: no rule is written from it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, machine  # noqa: E402
from pipeline import nlp  # noqa: E402
from pipeline.config import Settings  # noqa: E402

CANDIDATES = [ROOT.parent / "shared" / "data" / "ner-dev" / "conll-dev.txt",
              Path("/work/shared/data/ner-dev/conll-dev.txt")]
LABELS = ("PER", "ORG", "LOC")
MAP = {"PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC"}


def read_documents(path: Path) -> list[tuple[str, set[tuple[int, int, str]]]]:
    """[(text, gold spans)] per document."""
    docs: list[tuple[str, set[tuple[int, int, str]]]] = []
    sentences: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []

    def flush_doc() -> None:
        if current:
            sentences.append(list(current))
            current.clear()
        if sentences:
            docs.append(_build(sentences))
            sentences.clear()

    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("-DOCSTART-"):
            flush_doc()
            continue
        if not line.strip():
            if current:
                sentences.append(list(current))
                current.clear()
            continue
        parts = line.split()
        current.append((parts[0], parts[-1]))
    flush_doc()
    return docs


def _build(sentences: list[list[tuple[str, str]]]) -> tuple[str, set[tuple[int, int, str]]]:
    text_parts: list[str] = []
    spans: set[tuple[int, int, str]] = set()
    offset = 0
    for si, sent in enumerate(sentences):
        if si:
            text_parts.append("\n")
            offset += 1
        open_span: tuple[int, str] | None = None
        end = offset
        for ti, (token, tag) in enumerate(sent):
            if ti:
                text_parts.append(" ")
                offset += 1
            start = offset
            text_parts.append(token)
            offset += len(token)
            kind = tag[2:] if tag != "O" else None
            begins = tag.startswith("B-") or (kind is not None and (open_span is None or open_span[1] != kind))
            if open_span is not None and (kind is None or begins):
                spans.add((open_span[0], end, open_span[1]))
                open_span = None
            if kind is not None and open_span is None:
                open_span = (start, kind)
            end = offset
        if open_span is not None:
            spans.add((open_span[0], end, open_span[1]))
    return "".join(text_parts), {s for s in spans if s[2] in LABELS}


def score(gold: set, pred: set) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for label in (*LABELS, "micro"):
        g = {s for s in gold if label == "micro" or s[-1] == label}
        p = {s for s in pred if label == "micro" or s[-1] == label}
        tp = len(g & p)
        prec = tp / len(p) if p else 0.0
        rec = tp / len(g) if g else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[label] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4),
                      "gold": len(g), "predicted": len(p), "correct": tp}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--save", metavar="NAME", help="store the scores under this name in bench/results/ner_eval.json")
    ap.add_argument("--errors", type=int, default=0, help="print the N commonest false positives and misses")
    args = ap.parse_args()
    path = next((p for p in CANDIDATES if p.is_file()), None)
    if path is None:
        sys.exit("shared/data/ner-dev/conll-dev.txt not found beside the checkout")
    docs = read_documents(path)
    settings = Settings.from_env(os.environ)
    started = time.perf_counter()
    mentions = nlp.tag_entities([t for t, _ in docs], model=settings.spacy_model, gazetteer=settings.gazetteer_file)
    seconds = time.perf_counter() - started
    gold: set = set()
    pred: set = set()
    fp: Counter = Counter()
    fn: Counter = Counter()
    for d, ((text, g), ms) in enumerate(zip(docs, mentions, strict=True)):
        p = {(m.start, m.end, MAP[m.label]) for m in ms if m.label in MAP}
        gold |= {(d, *s) for s in g}
        pred |= {(d, *s) for s in p}
        for s in p - g:
            fp[(text[s[0]:s[1]], s[2])] += 1
        for s in g - p:
            fn[(text[s[0]:s[1]], s[2])] += 1
    result = score(gold, pred)
    print(f"{len(docs)} documents, {len(gold)} gold spans, tagged in {seconds:.1f} s "
          f"({settings.spacy_model}, {settings.gazetteer_file.name})")
    print(f"{'label':6} {'P':>6} {'R':>6} {'F1':>6} {'gold':>6} {'pred':>6}")
    for label, s in result.items():
        print(f"{label:6} {s['precision']:6.3f} {s['recall']:6.3f} {s['f1']:6.3f} {s['gold']:6} {s['predicted']:6}")
    if args.errors:
        print("\nfalse positives:", ", ".join(f"{t!r}/{lb}×{n}" for (t, lb), n in fp.most_common(args.errors)))
        print("\nmisses:", ", ".join(f"{t!r}/{lb}×{n}" for (t, lb), n in fn.most_common(args.errors)))
    if args.save:
        out = RESULTS / "ner_eval.json"
        saved = json.loads(out.read_text()) if out.is_file() else {}
        saved[args.save] = {"scores": result, "documents": len(docs), "seconds": round(seconds, 1),
                            "model": settings.spacy_model, "machine": machine()}
        out.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"saved under {args.save!r} in {out}")


if __name__ == "__main__":
    main()
