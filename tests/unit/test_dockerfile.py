"""The Dockerfile, read as text (no docker needed): the base image matches the pinned Airflow,
the model goes in by hash, the project under constraints.txt, as the airflow user, with the
DAGs and the SQL."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def runs_with_user() -> list[tuple[str, str]]:
    """(user in effect, RUN arguments) for every RUN."""
    user, out = "root", []
    for word, args in instructions():
        if word == "FROM":
            user = "airflow"  # the official image ends with USER airflow (50000)
        elif word == "USER":
            user = args
        elif word == "RUN":
            out.append((user, args))
    return out


def copies() -> list[tuple[list[str], str]]:
    out = []
    for word, args in instructions():
        if word == "COPY":
            parts = [p for p in args.split() if not p.startswith("--")]
            out.append((parts[:-1], parts[-1]))
    return out


def pinned_airflow() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d.split("==", 1)[1] for d in deps if d.startswith("apache-airflow==")]
    assert len(pins) == 1, deps
    return pins[0]


def test_base_image_is_the_pinned_airflow():
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) == 1
    m = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)(?:-python(\d+)\.(\d+))?", froms[0])
    assert m, froms[0]
    assert m.group(1) == pinned_airflow()
    assert f"apache-airflow=={m.group(1)}" in (ROOT / "constraints.txt").read_text().splitlines()
    if m.group(2):  # a python variant, if pinned, is one the project supports
        requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
        minimum = tuple(int(x) for x in re.fullmatch(r">=(\d+)\.(\d+)", requires).groups())
        assert (int(m.group(2)), int(m.group(3))) >= minimum


def test_model_is_installed_by_hash_before_the_project():
    runs = [args for _, args in runs_with_user()]
    model = [i for i, r in enumerate(runs) if "-r requirements-model.txt" in r]
    project = [i for i, r in enumerate(runs) if re.search(r"pip install .*-c constraints\.txt \.(\s|$)", r)]
    assert len(model) == 1 and len(project) == 1
    assert "--require-hashes" in runs[model[0]] and "--no-deps" in runs[model[0]]
    assert model[0] < project[0]
    # the image's own Airflow cannot move: named on the command line, pinned in constraints.txt
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in runs[project[0]]


def test_pip_runs_as_the_airflow_user():
    for user, args in runs_with_user():
        if "pip install" in args:
            assert user == "airflow", args
            assert "--no-cache-dir" in args, args
    assert [a for w, a in instructions() if w == "USER"][-1] == "airflow"


def test_copies_what_the_build_and_the_runtime_need():
    copied = {src.rstrip("/"): dest for sources, dest in copies() for src in sources}
    for name in ("pyproject.toml", "constraints.txt", "requirements-model.txt", "README.md", "pipeline", "sql"):
        assert name in copied, f"Dockerfile must COPY {name}"
    assert copied["dags"].rstrip("/") == "/opt/airflow/dags"
    for src in copied:
        assert (ROOT / src).exists(), f"COPY source {src} is missing"
    # everything copied belongs to the airflow user and group root (the image's convention)
    for word, args in instructions():
        if word == "COPY":
            assert "--chown=airflow:root" in args, args


def test_sql_ships_inside_the_wheel():
    # the image installs a wheel (not editable): store.migrations.sql_dir() finds pipeline/sql there
    hatch = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert hatch["force-include"] == {"sql": "pipeline/sql"}
    assert not any("-e" in args.split() for _, args in runs_with_user() if "pip install" in args)


def test_dockerignore_keeps_secrets_out_and_lets_the_sources_in():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".env", ".venv", ".git", ".newsroom"} <= ignored
    for sources, _ in copies():
        for src in sources:
            top = src.rstrip("/").split("/")[0]
            assert top not in ignored, f"{src} is copied but .dockerignore drops it"
