"""Every ```sql block in docs/queries.md runs against the test corpus and answers something,
so the documented queries never rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_views import build_corpus

DOC = Path(__file__).resolve().parents[2] / "docs" / "queries.md"
# A block may say it can legitimately come back empty on the test corpus.
MAY_BE_EMPTY = "-- may be empty"


def sql_blocks() -> list[tuple[str, str]]:
    """(heading, sql) for every ```sql block, named by the nearest heading above it."""
    text = DOC.read_text(encoding="utf-8")
    blocks = []
    for m in re.finditer(r"^```sql[ \t]*\n(.*?)^```[ \t]*$", text, re.S | re.M):
        headings = re.findall(r"^#+\s+(.+)$", text[: m.start()], re.M)
        blocks.append((headings[-1] if headings else "(no heading)", m.group(1)))
    return blocks


BLOCKS = sql_blocks()


def test_the_doc_has_at_least_ten_questions_each_under_a_question_heading():
    assert len(BLOCKS) >= 10
    for heading, _ in BLOCKS:
        assert heading.endswith("?"), heading
    assert len({h for h, _ in BLOCKS}) == len(BLOCKS)  # one query per question


@pytest.mark.parametrize(("heading", "query"), BLOCKS, ids=[h for h, _ in BLOCKS])
def test_documented_query_runs_and_answers(conn, heading, query):
    build_corpus(conn)
    rows = conn.execute(query).fetchall()
    if MAY_BE_EMPTY not in query:
        assert rows, f"no rows for: {heading}"
