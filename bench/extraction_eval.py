"""Body-text quality and speed of the extraction stage on the extraction-dev set.

    .venv/bin/python bench/extraction_eval.py [--data DIR] [--json OUT]

Compares trafilatura's defaults (`trafilatura.extract(html)`) with our `extract_article`, on
all pages, the tuning half and the held-out half (split by sha1 of the page id; tune on the
first, report the second). The metric is the Scrapinghub article-extraction-benchmark one, as
described in the data's README: 4-token shingle multisets per page, per-page normalised
tp/fp/fn, precision averaged over pages that predicted something, recall over pages with a
non-empty truth, F1 of the two averages. A page where our extractor raises ExtractionFailed
counts as predicting nothing.

The data stays where it is (../shared/data/extraction-dev beside the checkout by default); never copy it here.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without an install
    sys.path.insert(0, str(ROOT))

log = logging.getLogger(__name__)

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "extraction-dev"  # ../shared beside the checkout
SHINGLE_N = 4
_TOKEN_RE = re.compile(r"\w+")

TpFpFn = tuple[float, float, float]


# --- the metric ------------------------------------------------------------------------------

def tokenize(text: str | None) -> list[str]:
    return _TOKEN_RE.findall(text or "")


def shingles(text: str | None, n: int = SHINGLE_N) -> Counter[tuple[str, ...]]:
    """Multiset of n-token shingles; a text shorter than n tokens is one short shingle."""
    tokens = tokenize(text)
    return Counter(tuple(tokens[i:i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens)


def shingle_match(true: str | None, pred: str | None) -> TpFpFn:
    """Per-page tp/fp/fn over shingles, normalised to sum to 1 so long pages weigh the same."""
    t, p = shingles(true), shingles(pred)
    tp = float(sum((t & p).values()))
    fp = float(sum((p - t).values()))
    fn = float(sum((t - p).values()))
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fp == 0 else tp / (tp + fp)


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fn == 0 else tp / (tp + fn)


def aggregate(matches: Iterable[TpFpFn]) -> dict[str, float]:
    """Precision over pages that predicted something, recall over pages with a truth, F1 of both."""
    matches = list(matches)
    ps = [_precision(*m) for m in matches if m[0] + m[1] > 0]
    rs = [_recall(*m) for m in matches if m[0] + m[2] > 0]
    p = statistics.mean(ps) if ps else 0.0
    r = statistics.mean(rs) if rs else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "pages": len(matches)}


# --- the data --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Page:
    id: str
    url: str
    html: str
    truth: str


def split_of(page_id: str) -> str:
    """Deterministic half: 'tuning' or 'held-out', by the parity of sha1(id)."""
    return "tuning" if int(hashlib.sha1(page_id.encode()).hexdigest(), 16) % 2 == 0 else "held-out"


def load_pages(data: Path) -> list[Page]:
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id in sorted(truth):
        with gzip.open(data / "html" / f"{page_id}.html.gz", "rt", encoding="utf-8") as f:
            html = f.read()
        item = truth[page_id]
        pages.append(Page(page_id, item.get("url", ""), html, item.get("articleBody", "") or ""))
    return pages


# --- the systems -----------------------------------------------------------------------------

def trafilatura_default(page: Page) -> str:
    import trafilatura

    return trafilatura.extract(page.html) or ""


REFUSED: dict[str, str] = {}  # page id -> ExtractionFailed reason, from the last run of `ours`


def ours(page: Page) -> str:
    from pipeline.extract import ExtractionFailed, extract_article

    try:
        return extract_article(page.html, url=page.url).text
    except ExtractionFailed as err:
        REFUSED[page.id] = err.reason
        return ""  # a refusal predicts nothing


SYSTEMS: dict[str, Callable[[Page], str]] = {
    "trafilatura-default": trafilatura_default,
    "ours": ours,
}


def run_system(fn: Callable[[Page], str], pages: list[Page]) -> tuple[dict[str, str], float]:
    """Predictions by page id, and the pages/second of the whole run (decompression excluded)."""
    out: dict[str, str] = {}
    start = time.perf_counter()
    for page in pages:
        out[page.id] = fn(page)
    elapsed = time.perf_counter() - start
    return out, len(pages) / elapsed if elapsed else float("inf")


def evaluate(pages: list[Page], preds: dict[str, str]) -> dict[str, dict[str, float]]:
    matches = {p.id: shingle_match(p.truth, preds.get(p.id, "")) for p in pages}
    result = {"all": aggregate(matches.values())}
    for half in ("tuning", "held-out"):
        result[half] = aggregate(m for pid, m in matches.items() if split_of(pid) == half)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="extraction-dev folder")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("--system", choices=sorted(SYSTEMS), action="append",
                        help="evaluate only this system (repeatable)")
    parser.add_argument("--per-page", action="store_true", help="print per-page F1 of each system")
    args = parser.parse_args(argv)

    if not (args.data / "ground-truth.json").is_file() or not (args.data / "html").is_dir():
        # A skip, not a failure: `make bench` still runs the other benchmarks on a clone without it.
        print(f"skipped: extraction-dev data not found in {args.data} (expected ground-truth.json and html/);"
              " pass --data DIR", file=sys.stderr)
        return 0

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # it warns on every dropped page
    logging.getLogger("htmldate").setLevel(logging.CRITICAL)
    pages = load_pages(args.data)
    sizes = {h: sum(1 for p in pages if split_of(p.id) == h) for h in ("tuning", "held-out")}
    print(f"{len(pages)} pages ({sizes['tuning']} tuning, {sizes['held-out']} held-out) from {args.data}")

    results: dict[str, dict] = {}
    for name in args.system or list(SYSTEMS):
        REFUSED.clear()
        preds, pps = run_system(SYSTEMS[name], pages)
        scores = evaluate(pages, preds)
        results[name] = {"pages_per_second": pps, **scores}
        if name == "ours":
            results[name]["refused"] = {pid: REFUSED[pid] for pid in sorted(REFUSED)}
        if args.per_page:
            for p in pages:
                s = aggregate([shingle_match(p.truth, preds[p.id])])
                print(f"  {name:<20} {split_of(p.id):<8} {s['f1']:.3f} {p.id[:12]} {p.url}")

    header = f"{'system':<20} {'split':<9} {'pages':>5} {'P':>6} {'R':>6} {'F1':>6} {'pages/s':>8}"
    print(header)
    print("-" * len(header))
    for name, res in results.items():
        for half in ("all", "tuning", "held-out"):
            s = res[half]
            pps = f"{res['pages_per_second']:8.1f}" if half == "all" else ""
            print(f"{name:<20} {half:<9} {s['pages']:>5} {s['precision']:6.3f} {s['recall']:6.3f}"
                  f" {s['f1']:6.3f} {pps}")

    for name, res in results.items():
        for pid, reason in res.get("refused", {}).items():
            page = next(p for p in pages if p.id == pid)
            print(f"{name} refused ({reason}, {split_of(pid)}): {page.url}")

    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
