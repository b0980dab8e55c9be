"""A copy of the project's sql/ as it stood before a migration, for the migration tests: run
`store.migrations.migrate(conn, sql_before("0010", tmp_path))` to get a database from before 0010."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline import store


def sql_before(version: str, tmp_path: Path, *, views: bool = False) -> Path:
    """tmp_path/sql with the migrations numbered below `version` (and the views, with `views`)."""
    root = tmp_path / "sql"
    (root / "migrations").mkdir(parents=True)
    for path in sorted((store.migrations.sql_dir() / "migrations").glob("*.sql")):
        if path.name < version:
            shutil.copy(path, root / "migrations" / path.name)
    if views:
        shutil.copytree(store.migrations.sql_dir() / "views", root / "views")
    return root
