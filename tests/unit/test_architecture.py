"""docs/architecture.md matches the code: its table of who may import whom is the rule, and the
code imports nothing the table does not allow (nor third-party packages where the doc forbids)."""

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "pipeline"
DOC = ROOT / "docs" / "architecture.md"


def _rules() -> dict[str, set[str]]:
    text = DOC.read_text()
    table = text.split("<!-- import-rules -->")[1].split("<!-- /import-rules -->")[0]
    rules = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            rules[cells[0].strip("`")] = set(re.findall(r"`([\w.]+)`", cells[1]))
    return rules


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PIPELINE.rglob("*.py")):
        parts = path.relative_to(PIPELINE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            out[".".join(parts)] = path
    return out


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(pipeline modules, top-level third-party packages) that a file imports, anywhere in it."""
    mods, packages = set(), set()
    known = _modules()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pipeline":
                mods |= {a.name for a in node.names if a.name in known}
            elif node.module.startswith("pipeline."):
                name = node.module.removeprefix("pipeline.")
                mods.add(name)
                mods |= {f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in known}
            else:
                packages.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("pipeline."):
                    mods.add(a.name.removeprefix("pipeline."))
                else:
                    packages.add(a.name.split(".")[0])
    return mods, packages


def test_the_table_lists_every_module_and_nothing_else():
    listed, actual = set(_rules()), set(_modules())
    assert actual - listed == set(), f"modules missing from docs/architecture.md: {sorted(actual - listed)}"
    assert listed - actual == set(), f"docs/architecture.md lists modules that do not exist: {sorted(listed - actual)}"


@pytest.mark.parametrize("module", sorted(_modules()))
def test_module_imports_only_what_the_table_allows(module):
    allowed = _rules().get(module, set())
    mods, _ = _imports(_modules()[module])
    own = {m for m in mods if m.startswith(module + ".")}  # a package's own submodules
    extra = mods - allowed - own - {module}
    assert not extra, f"{module} imports {sorted(extra)}; docs/architecture.md allows {sorted(allowed)}"


@pytest.mark.parametrize(("package", "only"), [("psycopg", "store"), ("httpx", ("fetch", "runner"))])
def test_third_party_packages_stay_at_their_edge(package, only):
    only = (only,) if isinstance(only, str) else only
    for module, path in _modules().items():
        if module.split(".")[0] in only:
            continue
        assert package not in _imports(path)[1], f"{module} imports {package}; only {', '.join(only)} may"


def test_domain_and_foundation_do_no_io():
    io = {"fetch", "store", "embedded", "runner", "demo"}
    for module in ("states", "errors", "records", "text", "urls", "config", "config_files", "quality",
                   "periods", "feeds", "extract", "nlp", "topics", "dedup", "sitemaps"):
        mods, _ = _imports(_modules()[module])
        assert not {m.split(".")[0] for m in mods} & io, module


def test_dag_files_reach_pipeline_only_through_tasks():
    for path in sorted((ROOT / "dags").glob("*.py")):
        mods, packages = _imports(path)
        assert mods <= {"tasks", "config"}, f"{path.name} imports {sorted(mods)}"
        assert packages <= {"__future__", "pendulum", "airflow", "os", "logging", "pipeline"}, \
            f"{path.name} imports {sorted(packages)}"


def test_periods_is_standard_library_only():
    # Its rule is shared by the report and, later, the Airflow UI pages: no matplotlib, no database.
    _, packages = _imports(_modules()["periods"])
    assert packages <= set(sys.stdlib_module_names) | {"__future__"}, sorted(packages)
