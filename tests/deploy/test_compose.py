"""docker-compose.yaml and the Dockerfile, checked without a Docker engine.

Images cannot be pulled here, so these tests read the files: every service has an image, a
command, a healthcheck and the dependencies it needs; every Airflow service shares the settings
a CeleryExecutor deployment breaks without (one JWT secret, the Execution API URL, the broker and
result backend); the init service creates the ledger database and the pools; and the image is
built with the same install step as the test environment. The production image carries neither
the simulator (include/sandbox) nor a test or lint tool: only the `sandbox` target, which the
optional sandbox service runs, adds the simulator.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE = REPO_ROOT / "docker-compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
REQUIRED_ENV = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW_CONN_MIRAKL_DEFAULT",
    "AIRFLOW_CONN_STRIPE_DEFAULT",
    "AIRFLOW_CONN_MIRAKL_CONNECTOR_DB",
    "AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG",
)
_DEFAULT = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")
_REQUIRED = re.compile(r"\$\{([A-Z0-9_]+):\?([^}]*)\}")
#: What ``interpolate`` puts where compose would refuse to start (``${VAR:?message}``).
REFUSED = "<compose refuses to start: {}>"


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` / ``${VAR:?error}`` with an empty environment (what ``up``
    sees without .env)."""
    value = _REQUIRED.sub(lambda m: REFUSED.format(m.group(1)), str(value))
    return _DEFAULT.sub(lambda m: m.group(2) or "", value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_the_stack_has_every_component(services):
    assert set(AIRFLOW_SERVICES) | {"postgres", "redis", "airflow-init", "sandbox"} <= set(services)
    assert services["sandbox"]["profiles"] == ["sandbox"]  # optional: only with --profile


@pytest.mark.parametrize("name", ["postgres", "redis", *AIRFLOW_SERVICES, "sandbox"])
def test_every_long_running_service_has_image_command_and_healthcheck(services, name):
    service = services[name]
    assert service.get("image"), f"{name}: no image"
    healthcheck = service.get("healthcheck") or {}
    assert healthcheck.get("test"), f"{name}: no healthcheck"
    assert service.get("restart") == "always", f"{name}: not restarted"
    if name in AIRFLOW_SERVICES:
        assert service["command"] == AIRFLOW_SERVICES[name]
        # Built once by airflow-init; never pulled from a registry (the image is ours).
        assert "build" not in service and service["pull_policy"] == "never"
        assert service["image"] == services["airflow-init"]["image"]
        # `airflow jobs check` / `celery inspect` take 13-23 s under load: 10 s was too short.
        assert _seconds(healthcheck["timeout"]) >= 30, f"{name}: health check timeout too short"


def _seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    return int(duration[:-1])


#: Each image of the Dockerfile and the one service that builds it.
BUILDERS = {"production": "airflow-init", "sandbox": "sandbox"}


def test_each_image_is_built_by_one_service_and_never_pulled(compose, services):
    builders = {name: s for name, s in services.items() if "build" in s}
    assert set(builders) == set(BUILDERS.values())
    images = {}
    for target, name in BUILDERS.items():
        service = builders[name]
        assert service["build"] == {"context": ".", "target": target}, name
        assert service["pull_policy"] == "build", name
        images[target] = service["image"]
    assert len(set(images.values())) == 2, "the two targets share one image name"
    # The Airflow services run the production image, never the one with the simulator.
    assert images["production"] == compose["x-airflow-common"]["image"]
    for name in AIRFLOW_SERVICES:
        assert services[name]["image"] == images["production"], name


def test_sandbox_service_runs_the_simulator_from_its_image(services):
    sandbox = services["sandbox"]
    script = "\n".join(sandbox["command"])
    assert "scenario=/opt/airflow/include/sandbox/mirakl_sandbox/scenarios/demo.json" in script
    # The sandbox image copies include/sandbox to that path (Dockerfile, target sandbox).
    assert (REPO_ROOT / "include/sandbox/mirakl_sandbox/scenarios/demo.json").is_file()
    assert "python -m mirakl_connector.airflow.demo seed-ledger" in script
    assert "exec python -m mirakl_sandbox" in script
    sandbox_copies = [
        dest for source, dest in _copies(_stages()["sandbox"]) if source == "include/sandbox"
    ]
    assert sandbox_copies == ["/opt/airflow/include/sandbox"]


@pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, "airflow-init", "sandbox"])
def test_airflow_services_share_what_celery_needs(services, name):
    env = {k: interpolate(v) for k, v in services[name]["environment"].items()}
    missing = [key for key in REQUIRED_ENV if key not in env]
    assert missing == [], f"{name}: missing {missing}"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # No default secret: without .env compose refuses to start rather than sign task tokens
    # with a string anyone can read in this file.
    for secret in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        assert env[secret].startswith("<compose refuses to start"), f"{name}: {secret} default"
    assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which the image lacks.
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "postgres"
    # Workers reach the api-server by its service name and container port.
    execution = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert execution.hostname == "airflow-apiserver" and execution.path == "/execution/"
    published = services["airflow-apiserver"]["ports"][0].rsplit(":", 1)[-1]
    assert execution.port == int(published)
    # The ledger lives on the postgres service, in its own database (not Airflow's).
    ledger = urlsplit(env["AIRFLOW_CONN_MIRAKL_CONNECTOR_DB"])
    assert ledger.hostname == "postgres" and ledger.path == "/mirakl_connector"
    # Without real connections in .env, Mirakl and Stripe are the sandbox service.
    for conn in ("AIRFLOW_CONN_MIRAKL_DEFAULT", "AIRFLOW_CONN_STRIPE_DEFAULT"):
        assert "sandbox%3A8765" in env[conn]


def test_one_jwt_secret_and_env_for_every_airflow_service(compose, services):
    common = compose["x-airflow-common"]["environment"]
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        env = services[name]["environment"]
        for key, value in common.items():
            assert env.get(key) == value, f"{name}: {key} differs from x-airflow-common"


@pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, "sandbox"])
def test_airflow_services_wait_for_their_dependencies(services, name):
    depends = services[name]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["airflow-init"]["condition"] == "service_completed_successfully"
    if name == "airflow-worker":
        assert depends["airflow-apiserver"]["condition"] == "service_healthy"


def test_dags_and_plugins_are_mounted(services):
    for name in AIRFLOW_SERVICES:
        volumes = services[name]["volumes"]
        assert "./dags:/opt/airflow/dags" in volumes and "./plugins:/opt/airflow/plugins" in volumes
    assert (REPO_ROOT / "dags").is_dir() and (REPO_ROOT / "plugins").is_dir()


def test_init_creates_ledger_database_and_pools(services):
    init = services["airflow-init"]
    assert init["command"] == ["/opt/airflow/scripts/compose_init.sh"]
    script = (REPO_ROOT / "scripts/compose_init.sh").read_text()
    assert "CREATE DATABASE mirakl_connector" in script
    assert "/entrypoint airflow version" in script
    assert "/opt/airflow/scripts/create_pools.sh" in script
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["user"] == "0:0"


def test_init_skips_the_slow_part_when_nothing_changed():
    script = (REPO_ROOT / "scripts/compose_init.sh").read_text()
    skip = script.index('"$(state read)" = "$fingerprint"')
    # The check comes before the migration and the pools, and the fingerprint is written last.
    assert skip < script.index("/entrypoint airflow version")
    assert script.rstrip().endswith('state write "$fingerprint"')
    for part in ("apache-airflow", "pools_import_json", "MIRAKL_CONNECTOR_STRIPE_MODE"):
        assert part in script


def test_host_ports_are_variables(services):
    assert services["airflow-apiserver"]["ports"] == ["127.0.0.1:${AIRFLOW_API_PORT:-8080}:8080"]
    assert services["sandbox"]["ports"] == ["127.0.0.1:${SANDBOX_PORT:-8765}:8765"]


def test_secrets_stay_out_of_git_and_of_the_build_context():
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    docker_ignored = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".git", ".venv"} <= set(docker_ignored)


#: Development tools: pinned in requirements-dev.txt, never in requirements.txt or the image.
DEV_TOOLS = (
    "pytest",
    "pytest-timeout",
    "responses",
    "hypothesis",
    "ruff",
    "aiosmtpd",
    "playwright",
    "import-linter",
    "mypy",
)


def test_production_image_installs_no_test_tools():
    runtime = (REPO_ROOT / "requirements.txt").read_text()
    dev = (REPO_ROOT / "requirements-dev.txt").read_text()
    runtime_pins = {
        re.split(r"[=<>!~\[; ]", line.strip(), maxsplit=1)[0].lower()
        for line in runtime.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    for tool in DEV_TOOLS:
        assert tool not in runtime_pins, f"{tool} in the runtime requirements"
        assert not re.search(rf"^{tool}\b", runtime, re.M), f"{tool} in the runtime requirements"
        assert re.search(rf"^{re.escape(tool)}==", dev, re.M), (
            f"{tool} not pinned in requirements-dev.txt"
        )
    # Anything pytest-ish (plugins included) is a test tool.
    assert not [pin for pin in runtime_pins if pin.startswith("pytest")]
    # Every line of both files is an exact pin (or the dev file's include of the runtime file).
    for path in ("requirements.txt", "requirements-dev.txt"):
        for line in (REPO_ROOT / path).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and line != "-r requirements.txt":
                assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9_.]*", line), (
                    f"{path}: not an exact pin: {line}"
                )
    for tool in ("pytest", "playwright", "hypothesis", "ruff"):
        assert not re.search(rf"^{tool}\b", runtime, re.M), f"{tool} in the runtime requirements"
        assert re.search(rf"^{tool}==", dev, re.M), f"{tool} not pinned in requirements-dev.txt"
    assert dev.splitlines()[[line.startswith("-r") for line in dev.splitlines()].index(True)] == (
        "-r requirements.txt"
    )


def test_ports_are_bound_to_loopback(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} open to the network"


def test_worker_healthcheck_pings_its_own_celery_node(services):
    test = " ".join(services["airflow-worker"]["healthcheck"]["test"])
    assert "celery_executor.app inspect ping" in test and "$${HOSTNAME}" in test


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _stages() -> dict[str, list[tuple[str, str]]]:
    """The Dockerfile's stages by name, each starting with its FROM instruction."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for op, args in _dockerfile_instructions():
        if op == "FROM":
            image, _, name = args.partition(" AS ")
            assert name, f"unnamed stage: FROM {args}"
            current = stages.setdefault(name.strip(), [])
        assert current is not None, f"{op} before the first FROM"
        current.append((op, args))
    return stages


def _copies(stage: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(source, destination) of every COPY of ``stage``."""
    copied = []
    for op, args in stage:
        if op == "COPY":
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            for source in parts[:-1]:
                assert (REPO_ROOT / source).exists(), f"COPY source missing: {source}"
                copied.append((source.rstrip("/"), parts[-1]))
    return copied


def test_dockerfile_has_a_production_and_a_sandbox_stage():
    stages = _stages()
    assert list(stages) == ["production", "sandbox"]
    # The Python the tests run on (3.11), not the tag's default (3.13).
    assert stages["production"][0] == ("FROM", "apache/airflow:3.3.2-python3.11 AS production")
    # The simulator's image is the production image plus the simulator, nothing else.
    assert stages["sandbox"][0] == ("FROM", "production AS sandbox")
    assert _copies(stages["sandbox"]) == [("include/sandbox", "/opt/airflow/include/sandbox")]
    runs = [args for op, args in stages["sandbox"] if op == "RUN"]
    assert runs == ["python -m pip install --no-deps /opt/airflow/include/sandbox"]


def test_production_stage_copies_no_simulator_and_no_dev_requirements():
    production = _stages()["production"]
    sources = [source for source, _ in _copies(production)]
    # Not include/ as a whole: that would bring include/sandbox.
    assert "include" not in sources
    for source in sources:
        assert not source.startswith("include/sandbox"), f"the simulator in production: {source}"
        assert "requirements-dev" not in source, f"dev requirements in production: {source}"
        assert not source.startswith("tests"), source
    text = " ".join(args for _, args in production)
    for word in ("sandbox", "requirements-dev", *DEV_TOOLS):
        assert not re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text), (
            f"production stage mentions {word}"
        )
    # ... and the build context keeps the tests out whatever a COPY says.
    assert "tests" in (REPO_ROOT / ".dockerignore").read_text().splitlines()


def test_dockerfile_installs_with_the_tests_install_step():
    production = _stages()["production"]
    copied = dict(_copies(production))
    runs = [args for op, args in production if op == "RUN"]
    assert runs == ["/opt/airflow/scripts/install.sh"]  # the one install step, nothing else
    assert copied["scripts/install.sh"] == "/opt/airflow/scripts/"
    assert copied["scripts/create_pools.sh"] == "/opt/airflow/scripts/"  # the init service's
    assert copied["scripts/compose_init.sh"] == "/opt/airflow/scripts/"
    assert copied["requirements.txt"] == "/opt/airflow/requirements.txt"
    # install.sh installs $REPO_ROOT/include (= /opt/airflow/include): the connector's
    # pyproject and package, which packages mirakl_connector only.
    assert copied["include/pyproject.toml"] == "/opt/airflow/include/pyproject.toml"
    assert copied["include/mirakl_connector"] == "/opt/airflow/include/mirakl_connector"
    pyproject = (REPO_ROOT / "include/pyproject.toml").read_text()
    assert 'include = ["mirakl_connector*"]' in pyproject
    # ... and the test environment is installed by the same script (editable there).
    bootstrap = (REPO_ROOT / "scripts/bootstrap.sh").read_text()
    assert re.search(r'"\$REPO_ROOT/scripts/install.sh" --editable', bootstrap)
    code = [line for line in bootstrap.splitlines() if not line.lstrip().startswith("#")]
    installs = [line for line in code if "pip install" in line and "--upgrade pip" not in line]
    assert installs == []  # no second, different install path


def test_install_script_installs_requirements_and_the_library():
    script = (REPO_ROOT / "scripts/install.sh").read_text()
    assert re.search(r'pip install --quiet -r "\$requirements" "\$\{library\[@\]\}"', script)
    assert 'requirements="$REPO_ROOT/requirements.txt"\nlibrary=("$REPO_ROOT/include")' in script
    editable = 'library=(-e "$REPO_ROOT/include" -e "$REPO_ROOT/include/sandbox")'
    assert f'requirements="$REPO_ROOT/requirements-dev.txt"\n    {editable}' in script
    requirements = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    pins = {line.split("==")[0] for line in requirements if "==" in line}
    # The Celery stack needs these exactly (see requirements.txt comments).
    assert {"apache-airflow", "apache-airflow-providers-celery", "celery[redis]", "asyncpg"} <= pins


def test_the_connector_wheel_holds_no_simulator(tmp_path):
    """Build the wheel the production image installs, from exactly what its stage copies
    (include/pyproject.toml and include/mirakl_connector), and read what is inside."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "include"
    source.mkdir()
    shutil.copy(REPO_ROOT / "include/pyproject.toml", source)
    shutil.copytree(
        REPO_ROOT / "include/mirakl_connector",
        source / "mirakl_connector",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-build-isolation", "--no-deps"]
        + [str(source), "-w", str(tmp_path / "dist")],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("mirakl_connector-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[1] for name in names if name.count("/") > 1}
    assert {"core", "stripe", "hyperwallet", "ledger", "airflow"} <= packages
    assert not [name for name in names if "sandbox" in name.lower()]
    assert not [name for name in names if name.startswith(("tests/", "mirakl_sandbox/"))]
