"""What `pipeline/entity_rules.py` changes on real modern news: the 91 article bodies of the
extraction-dev ground truth (read in place, as bench/nlp_bench.py finds them), those in English
(the rules run only in English pipelines; `article` is the index among all 91 bodies).

For each text the raw mentions are made as `nlp.tag_entities` makes them (the shipped spaCy
pipeline with the gazetteer ruler, chunked, edges trimmed), then `entity_rules.explain` says
which rule changed what. Prints the changes per rule and writes a reproducible sample of them
to bench/entity_rules_sample.tsv (all changes if there are at most --all-max, else a seeded
sample of up to --per-rule per rule) with empty `verdict` and `note` columns for a human to
judge (better / worse / same: is the mention after the rule better than before?).

    .venv/bin/python bench/entity_rules_check.py              # count, write the sample
    .venv/bin/python bench/entity_rules_check.py --probes     # synthetic politics/defence lines
    .venv/bin/python bench/entity_rules_check.py --summary    # also tally the judged TSV
                                                              # into bench/results/entity_rules_check.json

--summary never rewrites the TSV (and --out NAME writes bench/results/NAME.json instead): it reads the verdicts a human filled in and checks that
they still match the changes the rules make now (same article, rule, before, after).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import entity_rules, extract, nlp
from pipeline.config import Settings
from pipeline.records import Mention

ROOT = Path(__file__).resolve().parent.parent
DEV_SET = [ROOT.parent / "shared" / "data" / "extraction-dev" / "ground-truth.json",
           Path("/work/shared/data/extraction-dev/ground-truth.json")]
SAMPLE = Path(__file__).resolve().parent / "entity_rules_sample.tsv"
COLUMNS = ["article", "rule", "before", "after", "left", "span", "right", "verdict", "note"]
CONTEXT = 100
SEED = 20261201


# Synthetic lines in the formats of politics/conflict/defence news (tables, delegate lists, party
# tags, royal titles) for the rules the 91 articles barely trigger; --probes prints what changes.
PROBES = (
    "Turkey's presidential election results:\nErdogan 52.6 Ince 30.6\nAksener 7.3 Demirtas 8.4\n"
    "Turnout was high, officials said.",
    "Markets at a glance\nDow Jones 28,004 -102\nNasdaq 8,500 +12\nBrent 62.1 1.2\n"
    "Stocks fell on Monday as Russia and Ukraine traded accusations.",
    "Casualties by province:\nIdlib 45 12\nAleppo 30 8\nHama 12 3\n"
    "The Syrian Observatory for Human Rights said the toll was rising.",
    "Defence spending 2019 (% of GDP):\nPoland 2.0 Greece 2.24\nEstonia 2.14 Latvia 2.01\n"
    "NATO Secretary General Jens Stoltenberg welcomed the rise.",
    "Ankara: Erdogan 2 meetings with Putin 3 times this year, the ministry said.",
    "Delegates attending the summit included Sergei Lavrov (Russia), Mevlut Cavusoglu (Turkey) and "
    "Mike Pompeo (United States).",
    "The talks were led by Hulusi Akar (Turkey) and Sergei Shoigu (Russia) in Sochi.",
    "A. Merkel and E. Macron met in Brussels. U. von der Leyen joined them. The meeting at St. Petersburg ended late.",
    "Sen. Lindsey Graham, R-S.C., and Rep. Adam Kinzinger, R-Ill., criticised the withdrawal from northern Syria. "
    "Gen. Frank McKenzie said US troops would stay.",
    "The Kurdistan Workers' Party (PKK) and the Syrian Democratic Forces (SDF) denied it. The PKK is listed as a "
    "terrorist group. The SDF said Turkish forces attacked Ras al-Ain.",
    "President Recep Tayyip Erdogan met President Vladimir Putin. Erdogan said Putin agreed. Crown Prince Mohammed "
    "bin Salman and Prince Charles attended. King Salman sent a letter.",
)


def probes(settings: Settings) -> None:
    texts = list(PROBES)
    for text, mentions in zip(texts, raw_mentions(texts, settings), strict=True):
        print(_flat(text)[:90])
        for c in entity_rules.explain(text, mentions)[1]:
            print(f"    {c.rule:<15} {_show(c.before)} -> {_show(c.after)}")


def english(text: str) -> bool:
    """Whether English's stopwords lead in the text (extract's stopword vote): the English
    pipeline, and so the rules, only ever see English articles; the set has a few others."""
    scores = extract._stopword_scores(text)
    return bool(scores) and max(scores, key=scores.__getitem__) == "en"


def load_texts() -> tuple[Path, list[str]]:
    """The article bodies (and titles, where the file has them, as the body's first line)."""
    for path in DEV_SET:
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            texts = []
            for v in data.values():
                body = v.get("articleBody")
                if not body:
                    continue
                title = v.get("title") or v.get("headline")
                texts.append(f"{title}\n\n{body}" if title else body)
            return path, texts
    raise SystemExit("extraction-dev ground truth not found: " + ", ".join(map(str, DEV_SET)))


def raw_mentions(texts: list[str], settings: Settings) -> list[list[Mention]]:
    """The mentions `nlp.tag_entities` hands to the rules (same pipeline, chunks and trimming)."""
    model, _, _ = nlp._load(settings.spacy_model, settings.gazetteer_file, settings.places_file)
    pieces = [(i, a, t[a:b]) for i, t in enumerate(texts) for a, b in nlp.chunk_spans(t)]
    raw: list[list[Mention]] = [[] for _ in texts]
    for (i, offset, chunk), doc in zip(pieces, model.pipe(p[2] for p in pieces), strict=True):
        for ent in doc.ents:
            start, end = ent.start_char, ent.end_char
            surface = chunk[start:end]
            lead = len(surface) - len(surface.lstrip())
            start, end = start + lead, end - (len(surface) - len(surface.rstrip()))
            if start < end:
                raw[i].append(Mention(start=offset + start, end=offset + end, surface=chunk[start:end],
                                      label=nlp.LABEL_MAP.get(ent.label_, ent.label_), canonical=""))
    return raw


def _show(m: Mention | None) -> str:
    return "-" if m is None else f"{m.surface}/{m.label}".replace("\n", "⏎").replace("\t", " ")


def _flat(s: str) -> str:
    return s.replace("\n", "⏎").replace("\t", " ")


def change_rows(texts: list[str], raw: list[list[Mention]], index: list[int]) -> list[dict[str, str]]:
    rows = []
    for k, text, mentions in zip(index, texts, raw, strict=True):
        _, changes = entity_rules.explain(text, mentions)
        for c in changes:
            spans = [m for m in (c.before, c.after) if m is not None]
            a, b = min(m.start for m in spans), max(m.end for m in spans)
            rows.append({"article": str(k), "rule": str(c.rule), "before": _show(c.before), "after": _show(c.after),
                         "left": _flat(text[max(0, a - CONTEXT):a]), "span": _flat(text[a:b]),
                         "right": _flat(text[b:b + CONTEXT]), "verdict": "", "note": ""})
    return rows


def sample(rows: list[dict[str, str]], all_max: int, per_rule: int) -> list[dict[str, str]]:
    if len(rows) <= all_max:
        return rows
    rng = random.Random(SEED)
    by_rule: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_rule.setdefault(r["rule"], []).append(r)
    picked = []
    for rule in sorted(by_rule):
        group = by_rule[rule]
        picked += group if len(group) <= per_rule else rng.sample(group, per_rule)
    return sorted(picked, key=lambda r: (int(r["article"]), r["rule"]))


def _key(r: dict[str, str]) -> tuple[str, ...]:
    return r["article"], r["rule"], r["before"], r["after"]


def summary(rows: list[dict[str, str]], judged: list[dict[str, str]]) -> dict:
    counts = Counter(r["rule"] for r in rows)
    current = Counter(_key(r) for r in rows)
    stale = [r for r in judged if current[_key(r)] == 0]
    per_rule = {}
    # Rules no longer in RuleName (dropped since the sample was judged) are tallied too.
    for rule in [*map(str, entity_rules.RuleName), *sorted({r["rule"] for r in judged} - set(entity_rules.RuleName))]:
        v = Counter(r["verdict"] or "unjudged" for r in judged if r["rule"] == rule)
        gone = Counter(r["verdict"] or "unjudged" for r in stale if r["rule"] == rule)
        per_rule[rule] = {"changes": counts.get(rule, 0), "sampled": sum(v.values()),
                          "better": v["better"], "worse": v["worse"], "same": v["same"],
                          "unjudged": v["unjudged"], "stale": dict(gone)}
    return {"changes": len(rows), "sampled": len(judged), "stale_sample_rows": len(stale),
            "stale_by_verdict": dict(Counter(r["verdict"] or "unjudged" for r in stale)), "per_rule": per_rule}


def downstream(texts: list[str], raw: list[list[Mention]], settings: Settings) -> dict[str, dict[str, int]]:
    """Per rule, the final mentions (span, label, canonical name after `nlp.normalise`, as
    `tag_entities` returns them) that exist only with the rule, and only without it (skip=)."""
    _, gaz, places = nlp._load(settings.spacy_model, settings.gazetteer_file, settings.places_file)

    def final(skip: list[entity_rules.RuleName]) -> set[tuple[int, int, int, str, str]]:
        return {(k, m.start, m.end, m.label, m.canonical)
                for k, (t, r) in enumerate(zip(texts, raw, strict=True))
                for m in nlp.normalise(entity_rules.apply(t, r, skip=skip), gaz, places=places, text=t)}

    full = final([])
    out = {}
    for rule in entity_rules.RuleName:
        without = final([rule])
        out[str(rule)] = {"only_with_rule": len(full - without), "only_without_rule": len(without - full)}
    none = final(list(entity_rules.RuleName))
    out["all"] = {"only_with_rule": len(full - none), "only_without_rule": len(none - full), "final_mentions": len(full)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--all-max", type=int, default=300, help="sample every change if there are at most this many")
    ap.add_argument("--per-rule", type=int, default=40, help="else at most this many per rule (seeded)")
    ap.add_argument("--summary", action="store_true", help="tally the judged TSV, write the results json")
    ap.add_argument("--verdicts", type=Path, help="a JSON file of the judge's verdicts and notes for the results json")
    ap.add_argument("--force", action="store_true", help="overwrite a judged sample TSV")
    ap.add_argument("--probes", action="store_true", help="only show the changes on the synthetic PROBES lines")
    ap.add_argument("--out", default="entity_rules_check",
                    help="--summary writes bench/results/OUT.json (another name keeps a judged results json)")
    args = ap.parse_args()

    settings = Settings.from_env()
    if args.probes:
        probes(settings)
        return
    path, everything = load_texts()
    index = [k for k, t in enumerate(everything) if english(t)]
    texts = [everything[k] for k in index]
    print(f"{len(everything)} texts, {len(texts)} in English (the rest never reach the English rules)")
    raw = raw_mentions(texts, settings)
    rows = change_rows(texts, raw, index)
    counts = Counter(r["rule"] for r in rows)
    print(f"{len(texts)} texts from {path}; {sum(map(len, raw))} raw mentions; {len(rows)} changes")
    for rule in entity_rules.RuleName:
        print(f"  {rule:<15} {counts.get(str(rule), 0):>5}")

    if not args.summary:
        if SAMPLE.exists() and "\tbetter\t" in SAMPLE.read_text(encoding="utf-8") and not args.force:
            raise SystemExit(f"{SAMPLE} holds judged verdicts: not overwritten (use --summary, or --force)")
        picked = sample(rows, args.all_max, args.per_rule)
        with SAMPLE.open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, COLUMNS, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE,
                               escapechar="\\")
            w.writeheader()
            w.writerows(picked)
        print(f"wrote {len(picked)} rows to {SAMPLE}")
        return

    with SAMPLE.open(encoding="utf-8", newline="") as f:
        judged = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\"))
    result = summary(rows, judged)
    result.update({"texts": len(everything), "english_texts": len(texts), "source": str(path), "raw_mentions": sum(map(len, raw)),
                   "model": nlp.model_version(nlp.load_nlp(settings.spacy_model, settings.gazetteer_file)),
                   "sample_file": str(SAMPLE.relative_to(ROOT)), "seed": SEED})
    for rule, diff in downstream(texts, raw, settings).items():
        result["per_rule"].setdefault(rule, {})["final_mentions_differing"] = diff
    if args.verdicts:  # {"rules": {rule: {...}}, anything else: copied to the top level}
        extra = json.loads(args.verdicts.read_text())
        for rule, fields in extra.pop("rules", {}).items():
            result["per_rule"].setdefault(rule, {}).update(fields)
        result.update(extra)
    print(f"{'rule':<15} {'changes':>7} {'sampled':>7} {'better':>6} {'worse':>6} {'same':>5}")
    for rule, r in result["per_rule"].items():
        if rule == "all":
            continue
        print(f"{rule:<15} {r['changes']:>7} {r['sampled']:>7} {r['better']:>6} {r['worse']:>6} {r['same']:>5}")
    if result["stale_sample_rows"]:
        print(f"warning: {result['stale_sample_rows']} sample rows no longer match a change "
              f"(by verdict: {result['stale_by_verdict']})")

    from common import write_result

    print(f"wrote {write_result(args.out, result)}")


if __name__ == "__main__":
    main()
