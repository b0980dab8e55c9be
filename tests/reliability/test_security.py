"""Security: no SQL built by string formatting; secrets never reach logs or error messages."""

import ast
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline import ingest, store
from pipeline.errors import NewsroomError

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"
SQL_CALLS = {"execute", "executemany", "copy"}


def _formatted(node: ast.AST) -> bool:
    """A str built at run time from pieces: f-string, %, + or str.format()."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        # sql.SQL("...").format(...) composes identifiers safely; str.format does not
        inner = node.func.value
        return not (isinstance(inner, ast.Call) and getattr(inner.func, "attr", getattr(inner.func, "id", "")) == "SQL")
    return False


@pytest.mark.parametrize("path", sorted(PIPELINE.rglob("*.py")), ids=lambda p: str(p.relative_to(PIPELINE)))
def test_no_sql_is_built_by_string_formatting(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
            if node.args and _formatted(node.args[0]):
                pytest.fail(f"{path.name}:{node.lineno}: SQL built by string formatting")


def test_only_store_imports_psycopg():
    for path in PIPELINE.rglob("*.py"):
        if path.parent.name == "store":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "psycopg" for n in names), path.name


@pytest.mark.parametrize("dsn", [
    "postgresql://newsroom:Sup3r-Secret@db.example:5432/newsroom",
    "host=db.example user=newsroom password=Sup3r-Secret dbname=newsroom",
    "postgresql+psycopg://newsroom:Sup3r-Secret@db.example/newsroom",
])
def test_redact_hides_passwords(dsn):
    assert "Sup3r-Secret" not in store.db.redact(dsn)


def test_database_password_never_reaches_logs_or_errors(settings, caplog):
    bad = replace(settings, database_url="postgresql://newsroom:Sup3r-Secret@127.0.0.1:9/newsroom")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NewsroomError) as info:
        ingest.ingest_once(bad)
    assert "Sup3r-Secret" not in str(info.value)
    assert "Sup3r-Secret" not in caplog.text


def test_airflow_metadata_password_is_not_printed(settings):
    from pipeline import runner

    printed: list[str] = []
    with pytest.raises(NewsroomError) as info:  # the server is unreachable: a clear error, no secret
        runner.up(replace(settings, database_url="postgresql://u:Sup3r-Secret@127.0.0.1:9/db"), echo=printed.append)
    assert "Sup3r-Secret" not in str(info.value)
    assert not any("Sup3r-Secret" in line for line in printed)


@pytest.mark.parametrize("dsn", [
    "postgresql://newsroom:Sup3r-Secret@[::1:5432/newsroom",         # a bad IPv6 host
    "postgresql://newsroom:Sup3r Secret@db.example/newsroom",        # an unencoded space
    "mysql://newsroom:Sup3r-Secret@db.example/newsroom",             # not PostgreSQL at all
    "host=db.example password='Sup3r-Secret dbname=newsroom",        # an unterminated quote
    "host=db.example password=Sup3r-Secret dbname=newsroom oops",    # a keyword without a value
    "postgresql://newsroom:Sup3r-Secret@db.example:notaport/newsroom",
    "postgresql://newsroom@db.example/newsroom?password=Sup3r-Secret&sslmode=nonsense",
])
def test_no_form_or_parse_error_of_a_dsn_prints_its_password(settings, dsn, caplog):
    caplog.set_level(logging.DEBUG)
    assert "Sup3r" not in store.db.redact(dsn) and "Secret" not in store.db.redact(dsn)
    with pytest.raises(NewsroomError) as info:
        ingest.ingest_once(replace(settings, database_url=dsn))
    for text in (str(info.value), caplog.text):
        assert "Sup3r" not in text and "Secret" not in text, text
