"""Gazetteer matching: spaCy's PhraseMatcher (the `entity_ruler` pipeline/nlp.py puts before NER,
`phrase_matcher_attr: LOWER`) against a pyahocorasick automaton over the same forms.

    .venv/bin/python bench/matcher_bench.py              # 5 runs of each timing
    .venv/bin/python bench/matcher_bench.py --runs 9
    .venv/bin/python bench/matcher_bench.py --no-scaled  # only the shipped patterns

Pattern sets: "shipped", the ruler's own patterns (`nlp._ruler_patterns(nlp.with_places(
load_gazetteer(NEWSROOM_GAZETTEER), load_places(NEWSROOM_PLACES)))`), and "scaled", those plus the
name of every place the place index holds (tens of thousands: what a bigger gazetteer would be).

Texts: the ground-truth article bodies in shared/data/extraction-dev (read in place, as
bench/nlp_bench.py does), cut in pieces as `tag_entities` cuts them, tokenised before timing: the
timings are the matcher's own cost per article, not the tokenizer's.

Measured, each timing `--runs` times (median, min, max):
- build: `ruler.add_patterns(patterns)` (tokenises every pattern) vs. building the automaton;
- match per article: the whole ruler component (matches, overlap resolution, doc.ents), its
  PhraseMatcher alone; the automaton on the doc's lower-cased text keeping matches that start and
  end on token boundaries, the same plus spans set as the ruler sets them (a drop-in component),
  and the automaton on the raw lower-cased text with a word-boundary check (no tokens needed);
- agreement: the matches (start, end, label||id) of each automaton variant vs. the
  PhraseMatcher's, and the entities the automaton component sets vs. the ruler's; disagreements
  are listed;
- the share of `tag_entities` time (per article, full pipeline) that the ruler takes;
- memory of each structure, built in a fresh interpreter with the model loaded: the entity
  ruler, a bare PhraseMatcher (the ruler also keeps every pattern's Doc), the automaton; RSS
  delta (includes the vocabulary the patterns add), tracemalloc current and peak.

pyahocorasick is not a dependency: without it (pip install pyahocorasick) only the PhraseMatcher
is measured, and the output says so. Writes bench/results/matcher.json.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import multiprocessing as mp
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_result
from nlp_bench import load_texts, peak_rss_mib, rss_mib

from pipeline import nlp, places
from pipeline.config import Settings

try:
    import ahocorasick
except ImportError:  # measured without it: the PhraseMatcher alone
    ahocorasick = None

RULER_CONFIG = {"phrase_matcher_attr": "LOWER", "validate": False, "overwrite_ents": True}
SEP = "||"  # the entity ruler's label||id separator


# --- patterns ------------------------------------------------------------------------------------

def pattern_sets(settings: Settings, scaled: bool) -> dict[str, list[dict[str, Any]]]:
    index = places.load_places(settings.places_file)
    gaz = nlp.with_places(nlp.load_gazetteer(settings.gazetteer_file), index)
    shipped, _ = nlp._ruler_patterns(gaz)
    sets = {"shipped": shipped}
    if scaled:
        seen = {(p["pattern"], p["id"]) for p in shipped}
        extra = []
        for candidates in index._by_name.values():
            for place in candidates:
                if (place.name, place.key) not in seen:
                    seen.add((place.name, place.key))
                    extra.append({"label": place.label, "pattern": place.name, "id": place.key})
        sets["scaled"] = shipped + extra
    return sets


def lower_same_length(text: str) -> str:
    """text.lower() with offsets kept: a character whose lower case is longer ('İ') stays."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


# --- the spaCy side ------------------------------------------------------------------------------

def load_model(model: str):
    import spacy

    return spacy.load(model, exclude=list(nlp._EXCLUDE))


def add_ruler(model_nlp, patterns: list[dict[str, Any]]):
    """The ruler as nlp._load adds it: first in the pipeline, so add_patterns only tokenises."""
    if "bench_ruler" in model_nlp.pipe_names:
        model_nlp.remove_pipe("bench_ruler")
    ruler = model_nlp.add_pipe("entity_ruler", name="bench_ruler", first=True, config=RULER_CONFIG)
    ruler.add_patterns(patterns)
    return ruler


def phrase_matches(ruler, doc) -> set[tuple[int, int, str]]:
    strings = doc.vocab.strings
    out = set()
    for match_id, start, end in ruler.phrase_matcher(doc):
        span = doc[start:end]
        out.add((span.start_char, span.end_char, strings[match_id]))
    return out


def ents_of(doc) -> set[tuple[int, int, str, str]]:
    return {(e.start_char, e.end_char, e.label_, e.ent_id_) for e in doc.ents}


# --- the automaton side --------------------------------------------------------------------------

def build_automaton(patterns: Sequence[dict[str, Any]]):
    keys: dict[str, list[str]] = {}
    for p in patterns:
        key = f"{p['label']}{SEP}{p['id']}" if p.get("id") else p["label"]
        bucket = keys.setdefault(lower_same_length(p["pattern"]), [])
        if key not in bucket:
            bucket.append(key)
    automaton = ahocorasick.Automaton()
    for form, ks in keys.items():
        automaton.add_word(form, (len(form), tuple(ks)))
    automaton.make_automaton()
    return automaton


def token_bounds(doc) -> tuple[list[int], list[int]]:
    """Each token's start and end character, read in one call (a Python loop over the tokens
    costs more than the automaton's whole search)."""
    from spacy.attrs import IDX, LENGTH

    arr = doc.to_array([IDX, LENGTH])
    starts = arr[:, 0]
    return starts.tolist(), (starts + arr[:, 1]).tolist()


def ac_token_matches(automaton, doc) -> list[tuple[int, int, str]]:
    """Matches starting and ending on the doc's token boundaries (what the PhraseMatcher sees)."""
    starts, ends = map(set, token_bounds(doc))
    out = []
    for last, (length, keys) in automaton.iter(lower_same_length(doc.text)):
        start, end = last - length + 1, last + 1
        if start in starts and end in ends:
            out += [(start, end, k) for k in keys]
    return out


def ac_word_matches(automaton, text: str) -> list[tuple[int, int, str]]:
    """Matches on the raw text, not inside a word: no tokens needed."""
    low = lower_same_length(text)
    n = len(low)
    out = []
    for last, (length, keys) in automaton.iter(low):
        start, end = last - length + 1, last + 1
        if (start == 0 or not low[start - 1].isalnum()) and (end == n or not low[end].isalnum()):
            out += [(start, end, k) for k in keys]
    return out


def ac_component(automaton, doc, text: str | None = None):
    """A drop-in for the ruler: token-boundary matches, the ruler's overlap rule (longest, then
    earliest), spans with label and id on doc.ents. A component only gets the doc, and doc.text
    joins every token's text again; `text`, the string the doc was made from, saves that."""
    from spacy.tokens import Span

    starts, ends = token_bounds(doc)
    by_start = {c: i for i, c in enumerate(starts)}
    by_end = {c: i + 1 for i, c in enumerate(ends)}
    matches = set()
    for last, (length, keys) in automaton.iter(lower_same_length(doc.text if text is None else text)):
        start, end = by_start.get(last - length + 1), by_end.get(last + 1)
        if start is not None and end is not None:
            matches.update((k, start, end) for k in keys)
    entities = list(doc.ents)
    new, seen = [], set()
    for key, start, end in sorted(matches, key=lambda m: (m[2] - m[1], -m[1]), reverse=True):
        if start not in seen and end - 1 not in seen:
            label, _, ent_id = key.partition(SEP)
            new.append(Span(doc, start, end, label=label, span_id=ent_id or 0))
            entities = [e for e in entities if not (e.start < end and e.end > start)]
            seen.update(range(start, end))
    doc.ents = entities + new
    return doc


# --- timing --------------------------------------------------------------------------------------

def stats(samples: Sequence[float], per: int = 1, unit: float = 1e3) -> dict[str, float]:
    """Median, min and max of the samples divided by `per`, in ms (unit 1e3) by default."""
    vals = [s / per * unit for s in samples]
    return {"median": round(statistics.median(vals), 4), "min": round(min(vals), 4),
            "max": round(max(vals), 4), "runs": len(vals)}


def time_runs(fn: Callable[[], object], runs: int, setup: Callable[[], object] | None = None) -> list[float]:
    out = []
    for _ in range(runs):
        arg = setup() if setup else None
        t = time.perf_counter()
        fn(arg) if setup else fn()
        out.append(time.perf_counter() - t)
    return out


def fmt(s: dict[str, float], unit: str = "ms") -> str:
    return f"{s['median']:>9.3f} {unit}  ({s['min']:.3f}-{s['max']:.3f})"


# --- memory, in a fresh interpreter ----------------------------------------------------------------

def bare_phrase_matcher(model_nlp, patterns: Sequence[dict[str, Any]]):
    """The PhraseMatcher alone, as a custom component would hold it: the entity ruler also keeps
    every pattern's Doc (ruler.phrase_patterns), the PhraseMatcher only their LOWER ids."""
    from spacy.matcher import PhraseMatcher

    matcher = PhraseMatcher(model_nlp.vocab, attr="LOWER")
    by_key: dict[str, list[str]] = {}
    for p in patterns:
        by_key.setdefault(f"{p['label']}{SEP}{p['id']}" if p.get("id") else p["label"], []).append(p["pattern"])
    for key, texts in by_key.items():
        matcher.add(key, list(model_nlp.tokenizer.pipe(texts)))
    return matcher


def _memory_job(kind: str, model: str, patterns: list[dict[str, Any]], queue: mp.Queue) -> None:
    if kind != "automaton":
        model_nlp = load_model(model)
        model_nlp.make_doc("warm up the tokenizer")
    gc.collect()
    base, hwm = rss_mib(), peak_rss_mib()
    tracemalloc.start()
    if kind == "ruler":
        keep: Any = add_ruler(model_nlp, patterns)
    elif kind == "bare":
        keep = bare_phrase_matcher(model_nlp, patterns)
    else:
        keep = build_automaton(patterns)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    extra = {"automaton_total_size_mib": round(keep.get_stats()["total_size"] / 2**20, 2)} if kind == "automaton" else {}
    queue.put({"rss_delta_mib": round(rss_mib() - base, 1), "peak_rss_delta_mib": round(peak_rss_mib() - hwm, 1),
               "tracemalloc_current_mib": round(current / 2**20, 2), "tracemalloc_peak_mib": round(peak / 2**20, 2),
               **extra})


def memory(kind: str, model: str, patterns: list[dict[str, Any]]) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_memory_job, args=(kind, model, patterns, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


# --- the bench -----------------------------------------------------------------------------------

def bench_set(name: str, patterns: list[dict[str, Any]], model_nlp, pieces: list[tuple[int, str]],
              n_articles: int, runs: int, model: str) -> dict[str, Any]:
    n_forms = len({lower_same_length(p["pattern"]) for p in patterns})
    print(f"\n== {name}: {len(patterns):,} patterns ({n_forms:,} distinct lower-cased forms)")
    res: dict[str, Any] = {"patterns": len(patterns), "distinct_lower_forms": n_forms}

    build = time_runs(lambda: add_ruler(model_nlp, patterns), runs)
    ruler = model_nlp.get_pipe("bench_ruler")
    res["build_s"] = {"phrase_matcher": stats(build, unit=1)}
    tokenise = lambda: [model_nlp.make_doc(text) for _, text in pieces]  # noqa: E731
    per_article = {
        "ruler (match + overlaps + doc.ents)": time_runs(lambda docs: [ruler(d) for d in docs], runs, tokenise),
        "phrase matcher alone": time_runs(lambda docs: [ruler.phrase_matcher(d) for d in docs], runs, tokenise),
    }
    docs = tokenise()
    pm = [phrase_matches(ruler, d) for d in docs]
    ruled = [ents_of(ruler(model_nlp.make_doc(text))) for _, text in pieces]
    res["matches"] = {"phrase_matcher": sum(map(len, pm)), "ruler_entities": sum(map(len, ruled))}
    res["memory"] = {"entity_ruler": memory("ruler", model, patterns),
                     "phrase_matcher_without_ruler": memory("bare", model, patterns)}

    if ahocorasick is not None:
        automaton = build_automaton(patterns)
        res["build_s"]["automaton"] = stats(time_runs(lambda: build_automaton(patterns), runs), unit=1)
        per_article["automaton, token boundaries"] = time_runs(
            lambda docs: [ac_token_matches(automaton, d) for d in docs], runs, tokenise)
        per_article["automaton component (+ overlaps + doc.ents)"] = time_runs(
            lambda docs: [ac_component(automaton, d) for d in docs], runs, tokenise)
        per_article["automaton component, text at hand (no doc.text)"] = time_runs(
            lambda docs: [ac_component(automaton, d, text) for d, (_, text) in zip(docs, pieces, strict=True)],
            runs, tokenise)
        per_article["automaton, raw text, word boundaries"] = time_runs(
            lambda: [ac_word_matches(automaton, text) for _, text in pieces], runs)
        tok = [set(ac_token_matches(automaton, d)) for d in docs]
        word = [set(ac_word_matches(automaton, text)) for _, text in pieces]
        comp = [ents_of(ac_component(automaton, model_nlp.make_doc(text))) for _, text in pieces]
        res["matches"].update({"automaton_raw_hits_before_boundary_check":
                               sum(sum(1 for _ in automaton.iter(lower_same_length(t))) for _, t in pieces),"automaton_token_boundaries": sum(map(len, tok)),
                               "automaton_word_boundaries": sum(map(len, word)),
                               "automaton_component_entities": sum(map(len, comp))})
        res["disagreements"] = {
            "token_boundaries_vs_phrase_matcher": diff(pieces, pm, tok),
            "word_boundaries_vs_phrase_matcher": diff(pieces, pm, word),
            "component_entity_spans_vs_ruler_entity_spans": diff(pieces, spans_of(ruled), spans_of(comp)),
        }
        res["same_span_other_label_or_id"] = sum(
            len(spans_of([a])[0] & spans_of([b])[0]) - len(a & b) for a, b in zip(ruled, comp, strict=True))
        res["memory"]["automaton"] = memory("automaton", model, patterns)

    res["per_article_ms"] = {k: stats(v, per=n_articles) for k, v in per_article.items()}

    print(f"  build: phrase matcher (add_patterns) {fmt(res['build_s']['phrase_matcher'], 's')}", end="")
    print(f"; automaton {fmt(res['build_s']['automaton'], 's')}" if "automaton" in res["build_s"] else "")
    print(f"  per article (median, min-max of {runs} runs over {n_articles} articles):")
    for k, s in res["per_article_ms"].items():
        print(f"    {k:<46} {fmt(s)}")
    print("  matches: " + ", ".join(f"{k} {v:,}" for k, v in res["matches"].items()))
    if "same_span_other_label_or_id" in res:
        print(f"  entities on the same span with another label||id (a tie broken differently): "
              f"{res['same_span_other_label_or_id']}")
    for k, rows in res.get("disagreements", {}).items():
        print(f"  disagreements, {k}: {len(rows)}")
        for row in rows[:15]:
            print(f"    {row}")
        if len(rows) > 15:
            print(f"    ... {len(rows) - 15} more in the json")
    for k, m in res["memory"].items():
        print(f"  memory, {k}: " + ", ".join(f"{a} {b}" for a, b in m.items()))
    return res


def spans_of(ents: list[set]) -> list[set]:
    """Entities as (start, end): where several patterns match the same span (homonym places in
    the scaled set), the ruler's pick among them follows a set's order, so the id may differ."""
    return [{e[:2] for e in es} for es in ents]


def diff(pieces: list[tuple[int, str]], ref: list[set], other: list[set]) -> list[dict[str, Any]]:
    rows = []
    for (article, text), a, b in zip(pieces, ref, other, strict=True):
        for side, items in (("only phrase matcher/ruler", a - b), ("only automaton", b - a)):
            for item in sorted(items):
                start, end = item[0], item[1]
                rows.append({"article": article, "side": side, "start": start, "end": end,
                             "key": SEP.join(str(x) for x in item[2:]), "text": text[start:end],
                             "context": text[max(0, start - 25):end + 25].replace("\n", " ")})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs of each timing (at least 5 recommended)")
    ap.add_argument("--no-scaled", action="store_true", help="only the shipped patterns")
    ap.add_argument("--no-tagging", action="store_true", help="skip the tag_entities timing (and the share)")
    args = ap.parse_args()
    settings = Settings.from_env()
    model = settings.spacy_model
    load_start = [round(x, 2) for x in os.getloadavg()]

    if ahocorasick is None:
        print("pyahocorasick is NOT installed: measuring the PhraseMatcher only "
              "(pip install pyahocorasick to compare the automaton)\n")
    else:
        print(f"pyahocorasick {importlib.metadata.version('pyahocorasick')} installed: comparing both\n")
    source, texts = load_texts()
    pieces = [(i, t[a:b]) for i, t in enumerate(texts) for a, b in nlp.chunk_spans(t)]
    print(f"texts: {len(texts)} articles ({len(pieces)} pieces) from {source}; "
          f"{sum(map(len, texts)) / len(texts):,.0f} characters on average; model {model}; {args.runs} runs")

    sets = pattern_sets(settings, scaled=not args.no_scaled)
    model_nlp = load_model(model)
    results = {name: bench_set(name, pats, model_nlp, pieces, len(texts), args.runs, model)
               for name, pats in sets.items()}

    tagging = None
    if not args.no_tagging:
        run = lambda: nlp.tag_entities(texts, model=model, gazetteer=settings.gazetteer_file,  # noqa: E731
                                       places=settings.places_file)
        nlp.tag_entities(texts[:5], model=model, gazetteer=settings.gazetteer_file, places=settings.places_file)
        tag = stats(time_runs(run, args.runs), per=len(texts))
        share = {name: round(r["per_article_ms"]["ruler (match + overlaps + doc.ents)"]["median"] / tag["median"], 5)
                 for name, r in results.items()}
        tagging = {"tag_entities_per_article_ms": tag, "ruler_share_of_tag_entities": share}
        print(f"\ntag_entities per article (shipped pipeline): {fmt(tag)}; the ruler's time as a share of it: "
              + ", ".join(f"{name} patterns {v:.2%}" for name, v in share.items()))

    out = write_result("matcher", {
        "load_average_at_start_and_end": [load_start, [round(x, 2) for x in os.getloadavg()]],
        "texts": len(texts), "pieces": len(pieces), "source": str(source), "model": model, "runs": args.runs,
        "pyahocorasick": importlib.metadata.version("pyahocorasick") if ahocorasick else "not installed",
        "pattern_sets": results, "tagging": tagging,
    })
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
