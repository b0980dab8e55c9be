"""Each enum of pipeline/states.py allows exactly what its column's CHECK constraint allows."""

import re

import pytest

from pipeline.states import (
    ArticleStatus,
    CharsetSource,
    DateSource,
    DisabledReason,
    ErrorClass,
    FeedManager,
    LinkRule,
    PlaceKind,
    PollOutcome,
    RunStatus,
    Stage,
)

CHECKED = [
    (ArticleStatus, "articles", "status"),
    (Stage, "articles", "failed_stage"),
    (DateSource, "articles", "published_source"),
    (PollOutcome, "feed_polls", "outcome"),
    (PollOutcome, "feeds", "last_status"),
    (RunStatus, "ingest_runs", "status"),
    (ErrorClass, "feed_polls", "error_class"),
    (ErrorClass, "feeds", "last_error_class"),
    (FeedManager, "feeds", "managed_by"),
    (DisabledReason, "feeds", "disabled_reason"),
    (CharsetSource, "raw_pages", "charset_source"),
    (PlaceKind, "entities", "place_kind"),
    (LinkRule, "article_entities", "link_rule"),
]


def _allowed(conn, table: str, column: str) -> set[str]:
    """The values a column's `col IN (...)` CHECK constraint allows."""
    defs = [r[0] for r in conn.execute(
        """SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
            WHERE c.conrelid = %s::regclass AND c.contype = 'c' AND a.attname = %s""", (table, column))
        if " = ANY (" in r[0]]
    assert len(defs) == 1, (table, column, defs)
    if "newsroom_error_classes()" in defs[0]:  # one list for every error-class column
        return {r[0] for r in conn.execute("SELECT unnest(newsroom_error_classes())")}
    return set(re.findall(r"'([^']*)'::text", defs[0]))


@pytest.mark.parametrize(("enum", "table", "column"), CHECKED, ids=lambda x: getattr(x, "__name__", x))
def test_enum_matches_its_check_constraint(conn, enum, table, column):
    assert {m.value for m in enum} == _allowed(conn, table, column)


def test_stages_take_statuses_in_order():
    assert [s.takes for s in Stage] == [ArticleStatus.DISCOVERED, ArticleStatus.FETCHED, ArticleStatus.EXTRACTED]
