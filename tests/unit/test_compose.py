"""docker-compose.yml, read as data (no docker needed): services and profiles, images, health
checks, volumes, start-up order, secrets from .env, and the two databases the init script makes."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)  # resolves the &anchors and <<: merge keys
# What compose interpolates: YAML comments are gone before it does.
COMPOSE_CODE = "\n".join(line for line in COMPOSE_TEXT.splitlines() if not line.lstrip().startswith("#"))
SERVICES = COMPOSE["services"]
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
INIT_SQL_SCRIPT = ROOT / "docker/postgres-init/01-databases.sh"

CORE = {"postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
        "airflow-triggerer"}
CELERY_ONLY = {"redis", "airflow-worker"}
AIRFLOW = {name for name in SERVICES if name.startswith("airflow-")}
LONG_RUNNING_AIRFLOW = AIRFLOW - {"airflow-init"}


# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; not $${...}
VAR_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def env_example() -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", ENV_EXAMPLE, re.M))


def compose_vars() -> dict[str, set[str]]:
    """Each variable compose interpolates, with the operators it is used with ('' for bare)."""
    out: dict[str, set[str]] = {}
    for name, op, _ in VAR_REF.findall(COMPOSE_CODE):
        out.setdefault(name, set()).add(op)
    return out


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    assert isinstance(env, dict), f"{service}: environment should be a mapping"
    return env


def test_services_and_profiles():
    assert set(SERVICES) == CORE | CELERY_ONLY
    for name in CORE:
        assert "profiles" not in SERVICES[name], f"{name} must start by default"
    for name in CELERY_ONLY:
        assert SERVICES[name].get("profiles") == ["celery"], name


def test_shared_settings_come_from_the_x_airflow_common_anchor():
    common = COMPOSE["x-airflow-common"]
    assert re.search(r"^x-airflow-common: &airflow-common$", COMPOSE_TEXT, re.M)
    for name in AIRFLOW:
        assert re.search(rf"^  {name}:\n    <<: \*airflow-common$", COMPOSE_TEXT, re.M), name
        assert SERVICES[name]["image"] == common["image"]
        # every common variable reaches every Airflow service (service-level env merges it in)
        assert set(common["environment"]) <= set(environment(name)), name


def test_images_are_pinned_and_airflow_runs_our_build():
    assert re.fullmatch(r"postgres:16(\.\d+)?(-[a-z0-9]+)?", SERVICES["postgres"]["image"])
    assert re.fullmatch(r"redis:\d+\.\d+(\.\d+)?(-[a-z0-9]+)?", SERVICES["redis"]["image"])
    images = set()
    for name in AIRFLOW:
        build = SERVICES[name]["build"]
        assert build["context"] == "."
        assert (ROOT / build.get("dockerfile", "Dockerfile")).resolve() == ROOT / "Dockerfile", name
        images.add(SERVICES[name]["image"])
    assert len(images) == 1
    image = images.pop()
    assert not image.startswith("apache/airflow"), "the Airflow services must run the image built here"
    assert re.fullmatch(r"\$\{AIRFLOW_IMAGE_NAME:-[a-z0-9./-]+:[\w.-]+\}", image)


def test_every_service_has_a_health_check():
    for name, service in SERVICES.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        test = check["test"]
        assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1, name
        for key in ("interval", "timeout"):
            assert re.fullmatch(r"\d+[smh]", check[key]), f"{name}: {key}"
        assert int(check["retries"]) >= 3, name


def test_health_checks_probe_the_right_thing():
    def test_of(name):
        return " ".join(SERVICES[name]["healthcheck"]["test"])

    # TCP to 127.0.0.1: false while first-start initialisation (socket only) is still running
    assert "pg_isready" in test_of("postgres") and "-h 127.0.0.1" in test_of("postgres")
    assert "redis-cli ping" in test_of("redis")
    assert "localhost:8080/api/v2/monitor/health" in test_of("airflow-apiserver")
    assert "localhost:8974/health" in test_of("airflow-scheduler")
    assert environment("airflow-scheduler")["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "--job-type DagProcessorJob" in test_of("airflow-dag-processor")
    assert "--job-type TriggererJob" in test_of("airflow-triggerer")
    assert "inspect ping" in test_of("airflow-worker")
    # $$ keeps ${HOSTNAME} for the container's shell instead of compose's interpolation
    for name in ("airflow-dag-processor", "airflow-triggerer", "airflow-worker"):
        assert "$${HOSTNAME}" in test_of(name), name


def test_named_volumes_are_declared_and_used():
    declared = set(COMPOSE["volumes"])
    assert declared == {"postgres-data", "airflow-logs", "newsroom-state"}
    used = set()
    for name, service in SERVICES.items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
                used.add(source)
    assert used == declared
    assert "postgres-data:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    for name in AIRFLOW:
        assert "airflow-logs:/opt/airflow/logs" in SERVICES[name]["volumes"], name
        assert f"newsroom-state:{environment(name)['NEWSROOM_STATE_DIR']}" in SERVICES[name]["volumes"], name


def test_the_api_server_publishes_8080_and_nothing_else_publishes():
    ports = SERVICES["airflow-apiserver"]["ports"]
    assert len(ports) == 1
    host, container = ports[0].rsplit(":", 2)[-2:]
    assert (host, container) == ("8080", "8080")
    for name, service in SERVICES.items():
        if name != "airflow-apiserver":
            assert "ports" not in service, name


def test_workers_can_be_scaled():
    worker = SERVICES["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker and "hostname" not in worker
    assert not any("container_name" in s for s in SERVICES.values())


def test_start_up_order():
    valid = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in SERVICES.items():
        for dep, spec in service.get("depends_on", {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            assert spec["condition"] in valid
            # a default service must never need one that only a profile starts
            if "profiles" not in service:
                assert "profiles" not in SERVICES[dep], f"{name} depends on profile-only {dep}"
    deps = {name: {d: s["condition"] for d, s in SERVICES[name].get("depends_on", {}).items()} for name in SERVICES}
    assert deps["airflow-init"] == {"postgres": "service_healthy"}
    for name in LONG_RUNNING_AIRFLOW:
        assert deps[name]["postgres"] == "service_healthy", name
        assert deps[name]["airflow-init"] == "service_completed_successfully", name
    # tasks report to the API server: whatever runs tasks waits for it
    for name in ("airflow-scheduler", "airflow-worker"):
        assert deps[name]["airflow-apiserver"] == "service_healthy", name
    assert deps["airflow-worker"]["redis"] == "service_healthy"
    assert SERVICES["airflow-init"]["restart"] == "no"
    for name in set(SERVICES) - {"airflow-init"}:
        assert SERVICES[name]["restart"] in {"always", "unless-stopped"}, name


def test_executor_defaults_to_local_and_comes_from_env():
    env = COMPOSE["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
    assert env_example()["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    # both start-up scripts guard against a half-made switch
    init = (ROOT / "docker/airflow-init.sh").read_text()
    worker = (ROOT / "docker/start-worker.sh").read_text()
    assert "*CeleryExecutor*" in init and "redis" in init
    assert "*CeleryExecutor*" in worker and "exit 1" in worker


def test_airflow_talks_to_its_database_with_psycopg_3():
    env = COMPOSE["x-airflow-common"]["environment"]
    sync, async_ = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]
    assert sync.startswith("postgresql+psycopg://airflow:") and sync.endswith("@postgres:5432/airflow")
    assert async_.startswith("postgresql+psycopg_async://airflow:") and async_.endswith("@postgres:5432/airflow")
    assert "asyncpg" not in COMPOSE_CODE
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"


def test_newsroom_uses_its_own_database_and_every_setting_reaches_the_tasks():
    env = COMPOSE["x-airflow-common"]["environment"]
    assert re.fullmatch(r"postgresql://newsroom:\$\{POSTGRES_NEWSROOM_PASSWORD:\?[^}]+\}@postgres:5432/newsroom",
                        env["NEWSROOM_DATABASE_URL"])
    assert set(ENV_NAMES.values()) <= set(env), set(ENV_NAMES.values()) - set(env)
    for var in set(ENV_NAMES.values()) - {"NEWSROOM_DATABASE_URL", "NEWSROOM_STATE_DIR"}:
        # empty when unset, so pipeline/config.py's default applies (no second copy of defaults)
        assert env[var] == f"${{{var}:-}}", var


def test_every_variable_compose_uses_is_documented_in_env_example():
    documented = env_example()
    used = compose_vars()
    assert used, "the pattern found no ${...} at all"
    missing = set(used) - set(documented)
    assert not missing, f"add to .env.example: {sorted(missing)}"
    lines = ENV_EXAMPLE.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"[A-Za-z_][A-Za-z0-9_]*=", line):
            assert lines[i - 1].startswith("# "), f"{line}: needs a one-line '# meaning' above it"


def test_only_braced_variables_or_escaped_dollars():
    # a bare $NAME would be interpolated by compose too, and dodge the check above
    stripped = COMPOSE_CODE.replace("$$", "")
    assert re.findall(r"\$(?!\{)", stripped) == []


def test_secrets_are_required_and_ship_without_a_value():
    used = compose_vars()
    required = {name for name, ops in used.items() if ":?" in ops}
    assert {"POSTGRES_PASSWORD", "POSTGRES_AIRFLOW_PASSWORD", "POSTGRES_NEWSROOM_PASSWORD", "AIRFLOW_ADMIN_PASSWORD",
            "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"} <= required
    documented = env_example()
    for name in required:
        assert documented[name] == "", f"{name} is a secret: no default value in .env.example"
        assert set(used[name]) == {":?"}, f"{name}: required everywhere it is used"
    # every component must agree on these, so they live in the shared anchor
    common = COMPOSE["x-airflow-common"]["environment"]
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert common[key].startswith(f"${{{key}:?"), key
    # no env_file: .env feeds interpolation only, so the superuser password reaches postgres alone
    assert not any("env_file" in s for s in SERVICES.values())
    holders = {name for name in SERVICES if "POSTGRES_PASSWORD" in environment(name)}
    assert holders == {"postgres"}


def test_init_script_creates_both_databases_with_their_own_roles():
    mounts = SERVICES["postgres"]["volumes"]
    assert "./docker/postgres-init:/docker-entrypoint-initdb.d:ro" in mounts
    script = INIT_SQL_SCRIPT.read_text()
    assert "CREATE DATABASE %I OWNER %I" in script and "CREATE ROLE %I LOGIN" in script
    calls = re.findall(r"^newsroom_create_database (\w+) \"\$\{(\w+)\}\"$", script, re.M)
    assert calls == [("airflow", "POSTGRES_AIRFLOW_PASSWORD"), ("newsroom", "POSTGRES_NEWSROOM_PASSWORD")]
    postgres_env = environment("postgres")
    for _, var in calls:
        assert postgres_env[var] == f"${{{var}:?set {var} in .env}}", var
    assert "REVOKE ALL ON DATABASE" in script  # neither role can connect to the other's database


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_scripts_parse():
    for path in [INIT_SQL_SCRIPT, *sorted((ROOT / "docker").glob("*.sh"))]:
        subprocess.run(["bash", "-n", str(path)], check=True)


def test_airflow_init_migrates_both_databases_and_creates_the_pool():
    assert SERVICES["airflow-init"]["command"] == ["bash", "/opt/newsroom/bin/airflow-init.sh"]
    script = (ROOT / "docker/airflow-init.sh").read_text()
    order = [script.index(s) for s in ("airflow db migrate", "airflow pools set newsroom_network",
                                       "newsroom db migrate")]
    assert order == sorted(order)
    pool = re.search(r'^NETWORK_POOL = "([^"]+)"', (ROOT / "dags/news_ingest.py").read_text(), re.M)
    assert pool and pool.group(1) == "newsroom_network"


def test_the_scripts_compose_runs_are_in_the_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for path in sorted(set(re.findall(r"/opt/newsroom/bin/([\w.-]+\.sh)", COMPOSE_TEXT))):
        assert (ROOT / "docker" / path).is_file(), path
        assert f"docker/{path}" in dockerfile, f"Dockerfile must copy docker/{path}"


def test_admin_password_comes_from_env():
    api_env = environment("airflow-apiserver")
    assert api_env["AIRFLOW_ADMIN_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    assert "AIRFLOW_ADMIN_PASSWORD" not in COMPOSE["x-airflow-common"]["environment"]
    assert "SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in COMPOSE_CODE  # never log-in-free
