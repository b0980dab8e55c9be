"""Place linking on the extraction-dev article bodies: how many GPE/LOC mentions get an id
(coverage), and how many of the linked ones are right (precision, from a hand-labelled sample).

- COVERAGE: of all mentions labelled GPE or LOC, the share that carry an id (geonames_id,
  iso_code or wikidata_id), overall, per label and per rule (`Mention.rule`, the LinkRule that
  linked it; "-" for a link without a rule, e.g. a gazetteer Wikidata id before place linking),
  and the number of distinct places linked (by `Mention.key` when present).
- SAMPLE: `--sample N --seed S --out F.tsv` draws a reproducible random sample of N linked GPE/LOC
  mentions, one per row with its context, and empty `correct` (y/n) and `note` columns to fill
  in by hand.
- PRECISION: `--labels F.tsv` reads a labelled sample back: correct / labelled, with a 95 %
  Wilson interval, overall and per rule (no tagging then).

    .venv/bin/python bench/link_eval.py                                # coverage table
    .venv/bin/python bench/link_eval.py --save before                  # also bench/results/linking.json
    .venv/bin/python bench/link_eval.py --sample 200 --seed 16 --out bench/link_sample.tsv
    .venv/bin/python bench/link_eval.py --labels bench/link_sample.tsv --save after
    .venv/bin/python bench/link_eval.py --recheck bench/link_sample.tsv  # which labels still hold

Tagging uses the settings' model and gazetteer (NEWSROOM_SPACY_MODEL, NEWSROOM_GAZETTEER) through
pipeline.nlp.tag_entities, as the tag stage does. The set is read in place, never copied. Fields
the current Mention may not have yet (key, country, geonames_id, iso_code, rule) are read with
getattr, so the script runs before and after place linking.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, machine  # noqa: E402
from pipeline import nlp  # noqa: E402
from pipeline.config import Settings  # noqa: E402

DEV_SET = [ROOT.parent / "shared" / "data" / "extraction-dev" / "ground-truth.json",
           Path("/work/shared/data/extraction-dev/ground-truth.json")]
PLACE_LABELS = ("GPE", "LOC")
CONTEXT = 120
COLUMNS = ("article", "start", "surface", "left_context", "right_context", "label", "canonical", "country",
           "geonames_id", "iso_code", "wikidata_id", "rule", "correct", "note")
NO_RULE = "-"


def load_texts() -> tuple[Path, list[str]]:
    """The ground-truth article bodies, in file order (the article index is the position here)."""
    path = next((p for p in DEV_SET if p.is_file()), None)
    if path is None:
        sys.exit("shared/data/extraction-dev/ground-truth.json not found beside the checkout")
    data = json.loads(path.read_text(encoding="utf-8"))
    return path, [v["articleBody"] for v in data.values() if v.get("articleBody")]


# --- mentions --------------------------------------------------------------------------------

def ids(m) -> tuple:
    return (getattr(m, "geonames_id", None), getattr(m, "iso_code", None), getattr(m, "wikidata_id", None))


def is_linked(m) -> bool:
    return any(v not in (None, "") for v in ids(m))


def rule_name(m) -> str:
    rule = getattr(m, "rule", None)
    if rule is None:
        return NO_RULE
    return str(getattr(rule, "value", None) or getattr(rule, "name", rule))


def place_key(m) -> str:
    """One string per distinct linked place."""
    key = getattr(m, "key", None)
    if key:
        return str(key)
    geonames_id, iso_code, qid = ids(m)
    if geonames_id is not None:
        return f"geonames:{geonames_id}"
    if iso_code:
        return f"iso:{iso_code}"
    return f"wikidata:{qid}"


def tag_kwargs(settings: Settings) -> dict:
    """The settings' model, gazetteer and, where tag_entities takes one, place index."""
    kwargs = {"model": settings.spacy_model, "gazetteer": settings.gazetteer_file}
    if "places" in inspect.signature(nlp.tag_entities).parameters and hasattr(settings, "places_file"):
        kwargs["places"] = settings.places_file
    return kwargs


def tag(texts: list[str], settings: Settings) -> list[list]:
    return nlp.tag_entities(texts, **tag_kwargs(settings))


def coverage(tagged: list[list]) -> dict:
    places = [m for ms in tagged for m in ms if m.label in PLACE_LABELS]
    linked = [m for m in places if is_linked(m)]

    def share(k: int, n: int) -> float:
        return round(k / n, 4) if n else 0.0

    by_label = {}
    for label in PLACE_LABELS:
        n = sum(1 for m in places if m.label == label)
        k = sum(1 for m in linked if m.label == label)
        by_label[label] = {"mentions": n, "linked": k, "coverage": share(k, n)}
    rules = Counter(rule_name(m) for m in linked)
    by_rule = {r: {"linked": k, "share_of_places": share(k, len(places)), "share_of_linked": share(k, len(linked))}
               for r, k in rules.most_common()}
    by_id = {
        "geonames_id": sum(1 for m in linked if getattr(m, "geonames_id", None) is not None),
        "iso_code": sum(1 for m in linked if getattr(m, "iso_code", None)),
        "wikidata_id": sum(1 for m in linked if getattr(m, "wikidata_id", None)),
        "country": sum(1 for m in places if getattr(m, "country", None)),
    }
    unlinked = Counter(m.canonical or m.surface for m in places if not is_linked(m))
    return {
        "mentions": len(places), "linked": len(linked), "coverage": share(len(linked), len(places)),
        "distinct_places_linked": len({place_key(m) for m in linked}),
        "distinct_places_unlinked": len(unlinked),
        "by_label": by_label, "by_rule": by_rule, "with_field": by_id,
        "commonest_unlinked": [[name, n] for name, n in unlinked.most_common(25)],
    }


def print_coverage(cov: dict) -> None:
    print(f"GPE/LOC mentions: {cov['mentions']}; linked {cov['linked']} = {cov['coverage']:.1%}; "
          f"distinct places linked {cov['distinct_places_linked']} "
          f"(distinct unlinked names {cov['distinct_places_unlinked']})")
    for label, s in cov["by_label"].items():
        print(f"  {label:4} {s['linked']:5} / {s['mentions']:5} = {s['coverage']:.1%}")
    print(f"  {'rule':<24} {'linked':>6} {'of places':>9} {'of linked':>9}")
    for r, s in cov["by_rule"].items():
        print(f"  {r:<24} {s['linked']:6} {s['share_of_places']:9.1%} {s['share_of_linked']:9.1%}")
    print("  with field: " + ", ".join(f"{k} {v}" for k, v in cov["with_field"].items()))
    print("  commonest unlinked: " + ", ".join(f"{n!r}×{k}" for n, k in cov["commonest_unlinked"][:15]))


# --- sample ----------------------------------------------------------------------------------

def _clean(s: object) -> str:
    return "" if s is None else str(s).replace("\t", " ").replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎")


def sample_rows(texts: list[str], tagged: list[list], n: int, seed: int) -> list[list[str]]:
    pool = [(i, m) for i, ms in enumerate(tagged) for m in sorted(ms, key=lambda m: (m.start, m.end))
            if m.label in PLACE_LABELS and is_linked(m)]
    picked = sorted(random.Random(seed).sample(range(len(pool)), min(n, len(pool))))
    rows = []
    for j in picked:
        i, m = pool[j]
        text = texts[i]
        geonames_id, iso_code, qid = ids(m)
        rows.append([_clean(v) for v in (
            i, m.start, m.surface, text[max(0, m.start - CONTEXT):m.start], text[m.end:m.end + CONTEXT],
            m.label, m.canonical, getattr(m, "country", None), geonames_id, iso_code, qid, rule_name(m), "", "")])
    return rows


def write_tsv(path: Path, rows: list[list[str]]) -> None:
    path.write_text("\n".join("\t".join(r) for r in [list(COLUMNS), *rows]) + "\n", encoding="utf-8")


def read_tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t") + [""] * (len(header) - len(line.split("\t"))), strict=False))
            for line in lines[1:] if line.strip()]


# --- precision -------------------------------------------------------------------------------

def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def precision(rows: list[dict[str, str]]) -> dict:
    def stats(rs: list[dict[str, str]]) -> dict:
        marks = [r["correct"].strip().lower()[:1] for r in rs]
        k, n = marks.count("y"), marks.count("y") + marks.count("n")
        lo, hi = wilson(k, n)
        return {"correct": k, "labelled": n, "unlabelled": len(rs) - n,
                "precision": round(k / n, 4) if n else None, "wilson95": [round(lo, 4), round(hi, 4)]}

    rules = sorted({r["rule"] for r in rows})
    wrong = [{"article": r["article"], "surface": r["surface"], "canonical": r["canonical"],
              "country": r["country"], "geonames_id": r["geonames_id"], "iso_code": r["iso_code"],
              "rule": r["rule"], "note": r["note"]}
             for r in rows if r["correct"].strip().lower().startswith("n")]
    # Correct rows the labeller annotated (e.g. a metonymy accepted), to weigh a stricter reading.
    noted = Counter(r["note"].strip() for r in rows if r["correct"].strip().lower().startswith("y") and r["note"].strip())
    return {"overall": stats(rows), "by_rule": {rule: stats([r for r in rows if r["rule"] == rule]) for rule in rules},
            "wrong": wrong, "correct_with_note": dict(noted.most_common())}


def print_precision(prec: dict) -> None:
    def line(name: str, s: dict) -> str:
        p = "-" if s["precision"] is None else f"{s['precision']:.3f}"
        return (f"  {name:<24} {s['correct']:4} / {s['labelled']:4} = {p:>5}  "
                f"95% Wilson [{s['wilson95'][0]:.3f}, {s['wilson95'][1]:.3f}]"
                + (f"  ({s['unlabelled']} unlabelled)" if s["unlabelled"] else ""))

    print("PRECISION (correct / labelled)")
    print(line("overall", prec["overall"]))
    for rule, s in prec["by_rule"].items():
        print(line(rule, s))
    if prec["correct_with_note"]:
        print("correct, with a note: " + "; ".join(f"{note} ×{n}" for note, n in prec["correct_with_note"].items()))
    if prec["wrong"]:
        print("wrong:")
        for w in prec["wrong"]:
            print(f"  [{w['article']}] {w['surface']!r} -> {w['canonical']} ({w['country']}, geonames "
                  f"{w['geonames_id'] or '-'}, iso {w['iso_code'] or '-'}, rule {w['rule']}): {w['note']}")


# --- recheck: a labelled sample against the current code --------------------------------------

def recheck(rows: list[dict[str, str]], tagged: list[list]) -> dict:
    """Each labelled row against the current tagging of its mention: the same link (its label
    still holds), another link (to label again) or no link. Precision over the rows still linked
    alike, and the rows that changed. A sample the rules were fixed from flatters them: draw a
    fresh one (another --seed) for an estimate."""
    # By start: a span's end may move (a possessive "'s" split off) while it is the same mention.
    at = {(i, m.start): m for i, ms in enumerate(tagged) for m in ms}
    same, changes = [], []
    for r in rows:
        m = at.get((int(r["article"]), int(r["start"])))
        linked = m is not None and m.label in PLACE_LABELS and is_linked(m)
        new = (m.canonical, *("" if v is None else str(v) for v in ids(m))) if linked else None
        if new == (r["canonical"], r["geonames_id"], r["iso_code"], r["wikidata_id"]):
            same.append(r)
            continue
        changes.append({"article": r["article"], "surface": r["surface"], "was": r["correct"], "note": r["note"],
                        "old": f"{r['canonical']} ({r['country']}, {r['geonames_id'] or r['iso_code'] or r['wikidata_id']})",
                        "new": (f"{m.canonical} ({getattr(m, 'country', None)}, {new[1] or new[2] or new[3]}, "
                                f"{rule_name(m)})" if linked else f"not linked ({m.label if m else 'no mention'})")})
    return {"unchanged": precision(same)["overall"], "changed": changes}


def print_recheck(rc: dict) -> None:
    s = rc["unchanged"]
    print(f"RECHECK: {s['labelled']} rows linked as labelled: {s['correct']} correct = "
          f"{s['precision'] if s['precision'] is not None else '-'} "
          f"[{s['wilson95'][0]:.3f}, {s['wilson95'][1]:.3f}]; {len(rc['changed'])} changed:")
    for c in rc["changed"]:
        print(f"  [{c['article']}] {c['surface']!r} (was {c['was'] or '?'}): {c['old']} -> {c['new']}"
              + (f"  ({c['note']})" if c["note"] else ""))


# --- main ------------------------------------------------------------------------------------

def _commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def save(name: str, data: dict) -> Path:
    out = RESULTS / "linking.json"
    saved = json.loads(out.read_text()) if out.is_file() else {}
    entry = saved.get(name, {})
    entry.update(data)
    entry["machine"] = machine()
    saved[name] = entry
    RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--save", metavar="NAME", help="store the results under NAME in bench/results/linking.json")
    ap.add_argument("--sample", type=int, metavar="N", help="draw N linked GPE/LOC mentions to label by hand")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "link_sample.tsv", help="where --sample writes")
    ap.add_argument("--labels", type=Path, metavar="TSV", help="read a labelled sample; print precision (no tagging)")
    ap.add_argument("--recheck", type=Path, metavar="TSV",
                    help="also compare a labelled sample with the current tagging (which labels still hold)")
    args = ap.parse_args()

    result: dict = {}
    if args.labels:
        prec = precision(read_tsv(args.labels))
        print_precision(prec)
        labels = args.labels.resolve()
        result["precision"] = {"sample": str(labels.relative_to(ROOT) if labels.is_relative_to(ROOT) else labels),
                               **prec}
    else:
        path, texts = load_texts()
        settings = Settings.from_env(os.environ)
        started = time.perf_counter()
        tagged = tag(texts, settings)
        seconds = time.perf_counter() - started
        print(f"{len(texts)} articles from {path}, tagged in {seconds:.1f} s "
              f"({', '.join(f'{k}={v}' for k, v in tag_kwargs(settings).items())})")
        cov = coverage(tagged)
        print_coverage(cov)
        result.update({"coverage": cov, "articles": len(texts), "seconds": round(seconds, 1),
                       "model": nlp.model_version(nlp.load_nlp(**tag_kwargs(settings))),
                       "settings": {k: str(v) for k, v in tag_kwargs(settings).items()},
                       "commit": _commit()})
        if args.recheck:
            rc = recheck(read_tsv(args.recheck), tagged)
            print_recheck(rc)
            result[f"recheck {args.recheck.name}"] = rc
        if args.sample:
            rows = sample_rows(texts, tagged, args.sample, args.seed)
            write_tsv(args.out, rows)
            print(f"wrote {len(rows)} rows (seed {args.seed}) to {args.out}")
    if args.save:
        print(f"saved under {args.save!r} in {save(args.save, result)}")


if __name__ == "__main__":
    main()
