"""Entity and topic tagging speed: articles/second for `tag_entities` (and with `tag_topics`),
in one process and in two, the peak RSS of a process with the model loaded, and the check
behind the pipeline trimming in pipeline/nlp.py (same entities, less time).

    .venv/bin/python bench/nlp_bench.py               # the extraction-dev bodies when present
    .venv/bin/python bench/nlp_bench.py --repeat 3    # the same texts three times over
    .venv/bin/python bench/nlp_bench.py --no-trim-check

Texts: the ground-truth article bodies in shared/data/extraction-dev (read in place, never
copied), else the handwritten articles of tests/unit/test_topics.py. Prints a table; asserts
nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline import nlp, topics
from pipeline.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DEV_SET = [ROOT.parent / "shared" / "data" / "extraction-dev" / "ground-truth.json",
           Path("/work/shared/data/extraction-dev/ground-truth.json")]


def load_texts() -> tuple[str, list[str]]:
    for path in DEV_SET:
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            bodies = [v["articleBody"] for v in data.values() if v.get("articleBody")]
            return f"extraction-dev ground truth ({path})", bodies
    spec = importlib.util.spec_from_file_location("_fixtures", ROOT / "tests" / "unit" / "test_topics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return "tests/unit/test_topics.py fixtures", [body for _, body in module.FIXTURES.values()]


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib() -> float:
    """Current resident set size of this process."""
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """Peak RSS of this process image. VmHWM, not getrusage's ru_maxrss: that one survives
    fork and exec, so a freshly spawned child would report its parent's peak."""
    return _status_mib("VmHWM")


# --- work done in each process ---------------------------------------------------------------

_settings = Settings.from_env()
_rules: topics.RuleSet | None = None
_batch_size = 32  # set from --batch-size; forked workers inherit it


def _tag(texts: Sequence[str], with_topics: bool) -> int:
    global _rules
    mentions = nlp.tag_entities(texts, model=_settings.spacy_model, gazetteer=_settings.gazetteer_file,
                                batch_size=_batch_size)
    if with_topics:
        _rules = _rules or topics.load_rules(_settings.topics_file)
        for text, ms in zip(texts, mentions, strict=True):
            topics.tag_topics(text, ms, _rules)
    return sum(len(m) for m in mentions)


def _chunk_job(args: tuple[list[str], bool]) -> int:
    return _tag(*args)


def _fresh_process_rss(texts: list[str], batch_size: int, queue: mp.Queue) -> None:
    """In a new interpreter: RSS with the model loaded, and the peak after tagging everything
    (the peak grows with the batch size: spaCy holds a whole batch of long documents)."""
    global _batch_size
    _batch_size = batch_size
    base = rss_mib()
    nlp.load_nlp(_settings.spacy_model, _settings.gazetteer_file)
    loaded = rss_mib()
    _tag(texts, True)
    queue.put((base, loaded, rss_mib(), peak_rss_mib()))


# --- measurements ----------------------------------------------------------------------------

def timed(fn, *args) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def trim_check(texts: list[str]) -> list[tuple[str, str, float, int, int]]:
    """spaCy alone (no gazetteer): the full pipeline vs. the trimmed one vs. also without parser."""
    import spacy

    model = _settings.spacy_model
    variants = [
        ("full pipeline", []),
        ("trimmed (shipped)", list(nlp._EXCLUDE)),
        ("trimmed, no parser", [*nlp._EXCLUDE, "parser"]),
    ]
    rows = []
    reference = None
    for name, exclude in variants:
        model_nlp = spacy.load(model, exclude=exclude)
        list(model_nlp.pipe(texts[:5]))  # warm up
        secs, docs = timed(lambda n=model_nlp: [[(e.start_char, e.end_char, e.label_) for e in d.ents]
                                                for d in n.pipe(texts, batch_size=32)])
        if reference is None:
            reference = docs
        differing = sum(1 for a, b in zip(reference, docs, strict=True) if a != b)
        rows.append((name, ",".join(model_nlp.pipe_names), len(texts) / secs, differing, len(texts)))
        del model_nlp
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=1, help="use the texts this many times over")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32, help="tag_entities batch_size")
    ap.add_argument("--no-trim-check", action="store_true")
    args = ap.parse_args()
    global _batch_size
    _batch_size = args.batch_size

    source, texts = load_texts()
    texts = texts * args.repeat
    chars = sum(map(len, texts))
    print(f"texts: {len(texts)} from {source}; {chars / len(texts):,.0f} characters on average")
    print(f"model: {_settings.spacy_model}; gazetteer: {_settings.gazetteer_file}; "
          f"batch size {_batch_size}; cpus: {os.cpu_count()}\n")

    if not args.no_trim_check:
        print("pipeline trimming (spaCy NER only, no gazetteer)")
        print(f"  {'variant':<22} {'articles/s':>10}  {'docs with other entities':>24}  components")
        for name, comps, rate, differing, n in trim_check(texts):
            print(f"  {name:<22} {rate:>10.1f}  {f'{differing}/{n}':>24}  {comps}")
        print()

    # Single process. The model is loaded before forking, so the workers share it.
    load_secs, model = timed(nlp.load_nlp, _settings.spacy_model, _settings.gazetteer_file)
    _tag(texts[:5], True)  # warm up
    rows: list[tuple[str, int, float, float]] = []
    secs, n_mentions = timed(_tag, texts, False)
    rows.append(("tag_entities", 1, secs, len(texts) / secs))
    secs, _ = timed(_tag, texts, True)
    rows.append(("tag_entities + tag_topics", 1, secs, len(texts) / secs))
    rules = topics.load_rules(_settings.topics_file)
    tagged = nlp.tag_entities(texts, model=_settings.spacy_model, gazetteer=_settings.gazetteer_file,
                              batch_size=_batch_size)
    secs, _ = timed(lambda: [topics.tag_topics(t, m, rules) for t, m in zip(texts, tagged, strict=True)])
    rows.append(("tag_topics alone", 1, secs, len(texts) / secs))

    ctx = mp.get_context("fork")
    chunk = 8
    for with_topics in (False, True):
        jobs = [(texts[i:i + chunk], with_topics) for i in range(0, len(texts), chunk)]
        with ctx.Pool(args.processes) as pool:
            pool.map(_chunk_job, [(texts[:2], True)] * args.processes)  # start and warm up the workers
            secs, _ = timed(pool.map, _chunk_job, jobs, 1)
        name = "tag_entities + tag_topics" if with_topics else "tag_entities"
        rows.append((name, args.processes, secs, len(texts) / secs))

    print(f"throughput ({n_mentions:,} mentions; model load {load_secs:.1f} s; {nlp.model_version(model)})")
    print(f"  {'step':<28} {'processes':>9} {'seconds':>8} {'articles/s':>10}")
    for name, procs, secs, rate in rows:
        print(f"  {name:<28} {procs:>9} {secs:>8.2f} {rate:>10.1f}")

    # Memory, in a fresh interpreter so nothing else this bench loaded counts; the peak depends
    # on the batch size, so the default is shown next to a smaller one.
    print("\nmemory of one tagging process (fresh interpreter, MiB)")
    print(f"  {'batch size':>10} {'before load':>12} {'model loaded':>13} {'after tagging':>14} {'peak':>6}")
    spawn = mp.get_context("spawn")
    memory = []
    for batch in dict.fromkeys((_batch_size, 8)):
        queue = spawn.Queue()
        proc = spawn.Process(target=_fresh_process_rss, args=(texts, batch, queue))
        proc.start()
        base, loaded, after, peak = queue.get()
        proc.join()
        print(f"  {batch:>10} {base:>12.0f} {loaded:>13.0f} {after:>14.0f} {peak:>6.0f}")
        memory.append({"batch_size": batch, "before_mib": round(base), "loaded_mib": round(loaded),
                       "after_mib": round(after), "peak_mib": round(peak)})

    from common import write_result

    out = write_result("nlp", {
        "texts": len(texts), "source": str(source), "model": nlp.model_version(model), "batch_size": _batch_size,
        "throughput": [{"step": n, "processes": p, "seconds": round(s_, 2), "articles_per_s": round(r, 2)}
                       for n, p, s_, r in rows],
        "memory": memory,
    })
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
