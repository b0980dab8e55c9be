"""`newsroom demo` keeps to its own state: its own embedded database under <state dir>/demo
(whatever NEWSROOM_DATABASE_URL says), asked with `newsroom --demo ...`, reset with --reset."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import config, demo, embedded
from pipeline.cli import main
from pipeline.errors import ConfigError


@pytest.fixture
def short_state():
    # The demo's embedded server puts its socket under the state directory: keep it short.
    path = Path(tempfile.mkdtemp(prefix="nrd", dir="/tmp"))
    yield path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedded.stop(path / "demo" / "pg")
    shutil.rmtree(path, ignore_errors=True)


def test_demo_settings_are_apart_from_yours(tmp_path):
    mine = config.Settings(database_url="postgresql://me@db/news", state_dir=tmp_path, per_host_delay=2.0)
    d = config.demo_settings(mine)
    assert d.embedded and d.state_dir == tmp_path / "demo" and d.pgdata == (tmp_path / "demo" / "pg").resolve()
    assert d.feeds_file == tmp_path / "demo" / "feeds.yaml" and d.allow_private_networks
    with pytest.raises(ConfigError, match="not a state directory `newsroom demo` made"):
        demo.reset(mine)
    # A directory merely named `demo` is not the demo's: never reset, never taken for its settings.
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "my-feeds.yaml").write_text("feeds: []\n")
    named = config.Settings(state_dir=tmp_path / "demo")
    assert not config.is_demo(named)
    with pytest.raises(ConfigError, match="has no .newsroom-demo file"):
        demo.reset(named)
    assert (tmp_path / "demo" / "my-feeds.yaml").exists()
    demo.prepare_state(d)
    assert config.is_demo(d) and demo.reset(d).startswith("removed the demo's state")
    assert not (tmp_path / "demo").exists()


def test_a_state_dir_named_demo_is_not_taken_for_the_demos(short_state, db_dsn, tmp_path):
    # NEWSROOM_STATE_DIR=.../demo with your own feed list: `newsroom demo` makes its state under it,
    # and leaves your feed list and your database alone.
    mine = short_state / "demo"
    mine.mkdir()
    feeds = mine / "my-feeds.yaml"
    feeds.write_text("feeds:\n  - url: https://example.org/rss\n    name: mine\n")
    env = {"NEWSROOM_STATE_DIR": str(mine), "NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_FEEDS": str(feeds),
           "NEWSROOM_LOG_LEVEL": "WARNING"}
    result = CliRunner().invoke(main, ["demo", "--reset", "--once", "--port", "0"], env=env,
                                catch_exceptions=False)
    try:
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert "nothing to reset" in result.stdout and (mine / "demo" / "pg").is_dir()
        assert feeds.read_text().startswith("feeds:\n  - url: https://example.org/rss")
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            embedded.stop(mine / "demo" / "pg")


def test_demo_runs_on_its_own_database_and_resets(short_state, db_dsn):
    env = {"NEWSROOM_STATE_DIR": str(short_state), "NEWSROOM_DATABASE_URL": db_dsn,
           "NEWSROOM_LOG_LEVEL": "WARNING", "COLUMNS": "100"}

    def run(*args):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    with socket.socket() as s:  # one port for every start: the site's URLs stay the same
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])

    first = run("demo", "--once", "--port", port)
    assert first.exit_code == 0, (first.stdout, first.stderr)
    assert (short_state / "demo" / "pg").is_dir()
    arrived = json.loads(run("--demo", "articles", "--arrived", "last-run", "--format", "json").stdout)
    assert len(arrived) == demo.article_count()
    # Your own database (NEWSROOM_DATABASE_URL) saw none of it.
    mine = run("articles", "--format", "json")
    assert mine.exit_code == 1 and json.loads(mine.stdout) == []

    # Started again, the site has one new bulletin and the feeds are polled at once.
    again = run("demo", "--once", "--port", port)
    assert again.exit_code == 0, again.stderr
    assert len(json.loads(run("--demo", "articles", "--arrived", "last-run", "--format", "json").stdout)) == 1

    reset = run("demo", "--reset", "--once", "--port", port)
    assert reset.exit_code == 0 and "removed the demo's state" in reset.stdout, (reset.stdout, reset.stderr)
    assert len(json.loads(run("--demo", "articles", "--format", "json").stdout)) == demo.article_count()
