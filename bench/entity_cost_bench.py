"""What entity tagging costs one worker: tagging speed (articles/s, one process, the gazetteer and
whatever tag_entities loads with it) and memory (RSS with everything loaded, peak RSS after
tagging), each run in a fresh interpreter so the measured process loads everything itself.

One run = one child process (`--child`):
  1. RSS of the bare interpreter with pipeline imported;
  2. load: the first tag_entities call on one short text (loads the spaCy pipeline, the gazetteer
     and anything tag_entities loads lazily, e.g. a place index) -> load seconds, RSS loaded;
  3. warm-up on 5 articles, then time tag_entities over the texts (`--repeat` times over, in
     calls of `--call-size` articles, batch_size 8 as the tag stage uses) -> articles/s, and
     articles per CPU second of this process (less hit by other processes on a shared machine
     than the wall clock), and the CPU time of nlp.normalise alone (where places are linked);
  4. RSS after, and the peak (VmHWM) of the whole run.
The parent runs `--runs` (default 3) children one after the other and reports median, min, max
and spread ((max - min) / median) of each figure. The machine is shared: read the spread before
believing a difference.

    .venv/bin/python bench/entity_cost_bench.py --runs 3 --save before
    .venv/bin/python bench/entity_cost_bench.py --runs 3 --save after   # prints the change vs before
    # interleaved A/B (the old code exported with `git archive OLD | tar -x -C /tmp/old`):
    .venv/bin/python bench/entity_cost_bench.py --runs 4 --code ab_before=/tmp/old --code ab_after=. \\
        --compare ab_before

Texts: the extraction-dev article bodies (read in place, never copied), as bench/nlp_bench.py.
Results: bench/results/entity_cost.json, one entry per --save name, with bench.common.machine().
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The checkout whose pipeline a child measures (--code NAME=DIR; default this one).
CODE = Path(os.environ.get("ENTITY_COST_CODE") or ROOT)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(CODE))

OUT = ROOT / "bench" / "results" / "entity_cost.json"
DEV_SET = [ROOT.parent / "shared" / "data" / "extraction-dev" / "ground-truth.json",
           Path("/work/shared/data/extraction-dev/ground-truth.json")]
# (key, what, unit, higher is better)
FIGURES = [("articles_per_s", "tagging speed", "articles/s", True),
           ("articles_per_cpu_s", "per CPU second", "articles/CPU-s", True),
           ("normalise_cpu_ms_per_article", "normalise CPU", "ms/article", False),
           ("load_s", "load (first call)", "s", False),
           ("base_mib", "RSS before load", "MiB", False),
           ("loaded_mib", "RSS loaded", "MiB", False),
           ("after_mib", "RSS after tagging", "MiB", False),
           ("peak_mib", "peak RSS", "MiB", False)]


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(repeat: int, call_size: int, batch_size: int) -> dict:
    """One measurement, in this (fresh) process; imports only the measured checkout's pipeline."""
    import inspect

    from pipeline import nlp
    from pipeline.config import Settings

    settings = Settings.from_env(os.environ)
    path = next(p for p in DEV_SET if p.is_file())
    texts = [v["articleBody"] for v in json.loads(path.read_text(encoding="utf-8")).values()
             if v.get("articleBody")] * repeat
    kwargs = {"model": settings.spacy_model, "gazetteer": settings.gazetteer_file}
    if "places" in inspect.signature(nlp.tag_entities).parameters:  # place linking (places: commit)
        kwargs["places"] = settings.places_file

    def tag(batch):
        return nlp.tag_entities(batch, **kwargs, batch_size=batch_size)

    base = _status_mib("VmRSS")
    t = time.perf_counter()
    tag(["Protesters gathered in Paris, France, on Monday."])
    load_s = time.perf_counter() - t
    loaded = _status_mib("VmRSS")
    tag(texts[:5])  # warm up
    # CPU time of the normalisation step (where places are linked), apart from spaCy's.
    normalise, norm_cpu = nlp.normalise, [0.0]

    def timed_normalise(*a, **k):
        c = time.process_time()
        try:
            return normalise(*a, **k)
        finally:
            norm_cpu[0] += time.process_time() - c

    nlp.normalise = timed_normalise
    t, cpu = time.perf_counter(), time.process_time()
    mentions = 0
    for i in range(0, len(texts), call_size):
        mentions += sum(len(ms) for ms in tag(texts[i:i + call_size]))
    secs, cpu = time.perf_counter() - t, time.process_time() - cpu
    nlp.normalise = normalise
    return {"articles": len(texts), "mentions": mentions, "seconds": round(secs, 2), "cpu_s": round(cpu, 2),
            "articles_per_s": round(len(texts) / secs, 3), "articles_per_cpu_s": round(len(texts) / cpu, 3),
            "normalise_cpu_ms_per_article": round(1000 * norm_cpu[0] / len(texts), 3), "load_s": round(load_s, 2),
            "base_mib": round(base, 1), "loaded_mib": round(loaded, 1),
            "after_mib": round(_status_mib("VmRSS"), 1), "peak_mib": round(_status_mib("VmHWM"), 1),
            "model": nlp.model_version(nlp.load_nlp(**kwargs)), "code": str(CODE),
            "pipeline": str(Path(nlp.__file__).parent)}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for key, *_ in FIGURES:
        vals = [r[key] for r in runs]
        med = statistics.median(vals)
        out[key] = {"median": round(med, 3), "min": min(vals), "max": max(vals),
                    "spread": round((max(vals) - min(vals)) / med, 4) if med else None}
    return out


def run_child(code: Path, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "ENTITY_COST_CODE": str(code)}
    proc = subprocess.run([sys.executable, __file__, "--child", "--repeat", str(args.repeat),
                           "--call-size", str(args.call_size), "--batch-size", str(args.batch_size)],
                          capture_output=True, text=True, env=env, cwd=code, check=False)
    if proc.returncode:
        sys.exit(f"run in {code} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_table(name: str, runs: list[dict], summary: dict, ref_name: str | None, ref: dict | None) -> None:
    print(f"\n{name}: {runs[0]['articles']} articles, {runs[0]['mentions']} mentions, {runs[0]['model']}, "
          f"pipeline from {runs[0]['pipeline']}; {len(runs)} fresh processes")
    print(f"  {'figure':<20} {'median':>9} {'min':>9} {'max':>9} {'spread':>7}"
          + (f" {ref_name + ' median':>15} {'change':>8}" if ref else ""))
    for key, what, unit, _ in FIGURES:
        s = summary[key]
        row = f"  {what:<20} {s['median']:>9.2f} {s['min']:>9.2f} {s['max']:>9.2f} {s['spread']:>7.1%}"
        if ref and key in ref:
            r = ref[key]["median"]
            row += f" {r:>15.2f} {(s['median'] - r) / r:>+8.1%}"
        print(row + f"  {unit}")


def main() -> None:
    from bench.common import machine

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="fresh processes per checkout")
    ap.add_argument("--repeat", type=int, default=2, help="use the texts this many times over")
    ap.add_argument("--call-size", type=int, default=16, help="articles per tag_entities call")
    ap.add_argument("--batch-size", type=int, default=8, help="tag_entities batch_size (the tag stage's)")
    ap.add_argument("--save", metavar="NAME", help="store under NAME in bench/results/entity_cost.json")
    ap.add_argument("--code", action="append", metavar="NAME=DIR", default=[],
                    help="measure the pipeline package of checkout DIR and save it under NAME; repeat it "
                         "to interleave runs of several checkouts (A B A B ...), which the machine's "
                         "drift then hits alike")
    ap.add_argument("--compare", default="before", help="saved entry to compare with (default: before)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.repeat, args.call_size, args.batch_size)))
        return

    codes = [(n, Path(d).resolve()) for n, d in (c.split("=", 1) for c in args.code)]
    if not codes:
        codes = [(args.save, ROOT)]
    runs: dict[str | None, list[dict]] = {name: [] for name, _ in codes}
    for n in range(args.runs):
        for name, code in codes:
            run = run_child(code, args)
            runs[name].append(run)
            print(f"run {n + 1} {name or ''}: {run['articles_per_s']:.2f} articles/s, load {run['load_s']:.1f} s, "
                  f"RSS loaded {run['loaded_mib']:.0f} MiB, peak {run['peak_mib']:.0f} MiB", flush=True)
    saved = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for name, _ in codes:
        summary = summarise(runs[name])
        ref = saved.get(args.compare, {}).get("summary") if args.compare != name else None
        print_table(name or "runs", runs[name], summary, args.compare, ref)
        if name:
            saved[name] = {"runs": runs[name], "summary": summary, "repeat": args.repeat, "call_size": args.call_size,
                           "batch_size": args.batch_size, "interleaved_with": [n for n, _ in codes if n != name],
                           "machine": machine()}
    if any(name for name, _ in codes):
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"\nsaved {', '.join(repr(n) for n, _ in codes if n)} in {OUT}")


if __name__ == "__main__":
    main()
