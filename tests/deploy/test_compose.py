"""The production stack's files, checked without Docker: docker-compose.yaml, Dockerfile, .env.example.

There is no Docker daemon where the tests run, so this module checks what can be known from the
files themselves, against real references rather than our own idea of them:

- the compose file against the Compose Specification's JSON Schema (``deploy/compose-spec.json``,
  an unchanged upstream copy; ``deploy/README.md`` says where from);
- every Airflow command in it (services, health checks, the init script) against the argument
  parser of the Airflow version installed from uv.lock;
- the Dockerfile's base image against the Airflow version uv.lock pins, and the database drivers
  and executor the settings name against the packages uv.lock installs (the image installs
  exactly those);
- the settings it needs (secrets, defaults) against what ``.env.example`` documents;
- least privilege: which services mount the data read-write, which secrets reach each
  container (environment, command, health check, mounted configs), none on a command line.

It runs in a few seconds and needs no network. What the stack does when it runs is
``tests/deploy/test_production_stack.py``'s subject (the same settings on a loopback PostgreSQL
and Redis).
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from returnwatch import settings
from returnwatch.airflow_support import WAREHOUSE_POOL

ROOT = settings.PROJECT_DIR
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
# What the image needs from the repository: the package, DAGs, dbt project, config, GX suites,
# the lock, and docs/ (the runbook the UI serves from the DAGs' "when it fails" links).
IMAGE_PATHS = (
    "include",
    "dags",
    "dbt_project",
    "config",
    "expectations",
    "docs",
    "pyproject.toml",
    "uv.lock",
    "README.md",
)
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA_FILE = ROOT / "deploy" / "compose-spec.json"
UV_LOCK = ROOT / "uv.lock"
PYPROJECT = ROOT / "pyproject.toml"

# The Airflow command each long-running Airflow service must run (official image: the
# entrypoint prefixes `airflow`). The init service is recognised by `airflow db migrate`.
AIRFLOW_ROLES = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
    "worker": ["celery", "worker"],
}
# `airflow jobs check --job-type` for the roles that record an Airflow job with a heartbeat.
JOB_TYPES = {
    "scheduler": "SchedulerJob",
    "dag-processor": "DagProcessorJob",
    "triggerer": "TriggererJob",
}

# Environment keys that hold a secret (a *_FILE key holds a path to one, not the secret).
SECRET_KEY_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|FERNET|_KEY$")
# Secrets a deployment may leave out: the feature is off without them (alerts go to the console).
OPTIONAL_SECRETS = {"SLACK_BOT_TOKEN"}
# Environment blocks that only some Airflow services merge in (least privilege).
ROLE_ENV_BLOCKS = ("x-celery-env", "x-fernet-env")

# Which .env secrets each container needs, by role, and why. A secret reaches a container through
# its environment, its command, its health check or a config it mounts.
NEEDED_SECRETS = {
    # The database owner's password, set when the data folder is first initialised.
    "postgres": {"POSTGRES_PASSWORD"},
    # Its own password (from its config file).
    "redis": {"REDIS_PASSWORD"},
    # Migrates the DB; checks the Airflow keys' form; writes the admin's password file.
    "init": {
        "POSTGRES_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "AIRFLOW_ADMIN_PASSWORD",
    },
    # The DB; decrypts connections for the UI and for tasks (execution API); signs and checks
    # tokens; signs log requests to the workers.
    "api-server": {
        "POSTGRES_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
    },
    # The DB; queues tasks in Redis; signs the tasks' tokens.
    "scheduler": {
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
    },
    # The DB (connections and variables while parsing and for DAG callbacks).
    "dag-processor": {
        "POSTGRES_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
    },
    # The DB; connections for triggers; its log server checks signed requests.
    "triggerer": {
        "POSTGRES_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
    },
    # Takes tasks from Redis, results to the DB; its log server checks signed requests; posts
    # to Slack. No Fernet key: tasks get connections through the execution API, and the worker
    # parses files from the internet.
    "worker": {
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "SLACK_BOT_TOKEN",
    },
}
# Roles that write the data volumes: the workers run every task; init checks they are writable.
DATA_WRITERS = {"worker", "init"}

# Compose interpolation: $$ is a literal $ (for the container's shell), ${NAME...} and $NAME are
# read from .env / the environment of `docker compose`.
_ESCAPED_DOLLAR = "$$"
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
_UNBRACED = re.compile(r"\$[A-Za-z_]")
_ENV_LINE = re.compile(r"^(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


# ---------------------------------------------------------------------------------- loading ---


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as docker compose sees it before interpolation (anchors merged)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose_text(compose: dict[str, Any]) -> str:
    """Every string of the compose file (keys and values, comments left out), one per line:
    what docker compose interpolates."""
    return "\n".join(value for _, value in _strings(compose))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def common_env(compose: dict[str, Any]) -> dict[str, str]:
    common = compose.get("x-airflow-common") or {}
    environment = common.get("environment")
    assert isinstance(environment, dict), (
        "docker-compose.yaml needs one `x-airflow-common` block with an `environment:` mapping "
        "(KEY: value) holding the settings every Airflow service shares"
    )
    return {key: str(value) for key, value in environment.items()}


@pytest.fixture(scope="module")
def airflow_env(
    compose: dict[str, Any], common_env: dict[str, str], airflow_services: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """Every Airflow setting some Airflow service gets: x-airflow-common's plus the role blocks
    (the Celery URLs, the Fernet key) the services that need them merge in."""
    merged = dict(common_env)
    for service in airflow_services.values():
        merged.update({k: v for k, v in _environment(service).items() if k.startswith("AIRFLOW__")})
    return merged


@pytest.fixture(scope="module")
def airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services that run the project's Airflow image (built from ./Dockerfile)."""
    return {name: service for name, service in services.items() if "build" in service}


@pytest.fixture(scope="module")
def roles(airflow_services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """role (api-server, scheduler, ..., init) -> the service that plays it."""
    found: dict[str, str] = {}
    for name, service in airflow_services.items():
        if "airflow db migrate" in _command_text(service):
            found.setdefault("init", name)
            continue
        for role, argv in AIRFLOW_ROLES.items():
            if _command_argv(service) == argv:
                found.setdefault(role, name)
    return found


@pytest.fixture(scope="module")
def env_example() -> dict[str, dict[str, Any]]:
    """.env.example's variables: name -> value, whether commented out, whether documented."""
    variables: dict[str, dict[str, Any]] = {}
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        match = _ENV_LINE.match(line.strip())
        if not match:
            continue
        # Documented: a comment right above it, or it belongs to a group of variables (one
        # per line) under a comment, e.g. POSTGRES_USER and POSTGRES_DB.
        previous = lines[number - 1].strip() if number else ""
        previous_variable = _ENV_LINE.match(previous)
        documented = (
            variables[previous_variable["name"]]["documented"]
            if previous_variable
            else previous.startswith("#")
        )
        variables[match["name"]] = {
            "value": match["value"],
            "commented": bool(match["commented"]),
            "documented": documented,
            "line": number + 1,
        }
    return variables


@pytest.fixture(scope="module")
def airflow_cli():
    """The installed Airflow's own argument parser (the version uv.lock pins)."""
    from airflow.cli.cli_parser import get_parser

    return get_parser()


def _command_argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _command_text(service: dict[str, Any]) -> str:
    return "\n".join(_command_argv(service))


def _references(text: str) -> list[re.Match[str]]:
    return list(_REFERENCE.finditer(text.replace(_ESCAPED_DOLLAR, "")))


def _strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in a parsed YAML tree, with where it is (keys included)."""
    if isinstance(node, dict):
        found: list[tuple[str, str]] = []
        for key, value in node.items():
            found.append((f"{path}.{key}", str(key)))
            found += _strings(value, f"{path}.{key}")
        return found
    if isinstance(node, list):
        return [item for i, value in enumerate(node) for item in _strings(value, f"{path}[{i}]")]
    return [(path, node)] if isinstance(node, str) else []


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(
            item.split("=", 1) if "=" in item else (item, "") for item in environment
        )
    return {key: str(value) for key, value in environment.items()}


def _volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """Mount target -> source (a named volume or a host path) for one service."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume.get("source", "")
        else:
            source, target = volume.split(":")[:2]
            mounts[target] = source
    return mounts


def _parse(cli, argv: list[str], where: str) -> Any:
    try:
        return cli.parse_args(argv)
    except SystemExit:
        pytest.fail(
            f"{where}: `airflow {' '.join(argv)}` is not a valid command of the installed "
            f"Airflow (its error is printed above)"
        )


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments left out."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _locked_version(package: str) -> str:
    lock = tomllib.loads(UV_LOCK.read_text())
    versions = [p["version"] for p in lock["package"] if p["name"] == package]
    assert len(versions) == 1, f"uv.lock should pin exactly one {package}, found {versions}"
    return versions[0]


# ------------------------------------------------------------------------- compose-spec schema ---


@pytest.fixture(scope="module")
def compose_schema_validator() -> jsonschema.protocols.Validator:
    assert SCHEMA_FILE.is_file(), (
        f"{SCHEMA_FILE.relative_to(ROOT)} is missing: it must be an unchanged copy of "
        "schema/compose-spec.json from the compose-spec/compose-spec repository (deploy/README.md)"
    )
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema.get("title") == "Compose Specification", (
        f"{SCHEMA_FILE.relative_to(ROOT)} is not the Compose Specification's schema"
    )
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def test_compose_file_is_valid_against_the_compose_spec_schema(compose, compose_schema_validator):
    errors = sorted(compose_schema_validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, (
        "docker-compose.yaml does not follow the Compose Specification:\n"
        + "\n".join(
            f"  at {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors
        )
    )


def test_schema_is_the_unchanged_upstream_copy_deploy_readme_records():
    recorded = re.findall(r"\b[0-9a-f]{64}\b", (ROOT / "deploy" / "README.md").read_text())
    actual = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    assert actual in recorded, (
        f"deploy/compose-spec.json (sha256 {actual}) is not the copy deploy/README.md records "
        f"({recorded}): replace it only with an upstream copy and record where it came from"
    )


def test_schema_rejects_what_docker_compose_would_reject(compose, compose_schema_validator):
    """The shipped schema is strict, so the test above can fail: a misspelt key is an error."""
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["healtcheck"] = broken["services"]["postgres"].pop("healthcheck")
    assert list(compose_schema_validator.iter_errors(broken)), (
        "deploy/compose-spec.json accepted a service key docker compose does not know "
        "('healtcheck'): it is not the real, strict Compose schema"
    )


# --------------------------------------------------------------------------------- services ---


def test_every_airflow_role_has_a_service(roles):
    missing = sorted((set(AIRFLOW_ROLES) | {"init"}) - set(roles))
    assert not missing, (
        f"docker-compose.yaml has no service for {missing}: expected services built from the "
        f"Dockerfile running `api-server`, `scheduler`, `dag-processor`, `triggerer`, "
        f"`celery worker`, and a one-shot init running `airflow db migrate`; found {roles}"
    )


def test_airflow_commands_are_valid_for_the_installed_airflow(airflow_services, roles, airflow_cli):
    for role in AIRFLOW_ROLES:
        name = roles[role]
        _parse(airflow_cli, _command_argv(airflow_services[name]), f"service {name}")


def test_images_are_the_project_build_postgres_and_redis_with_pinned_majors(
    services, airflow_services
):
    others = {name: service for name, service in services.items() if name not in airflow_services}
    assert set(others) == {"postgres", "redis"}, (
        f"besides the Airflow services (built from ./Dockerfile) only postgres and redis should "
        f"run, found {sorted(others)}"
    )
    for name, service in others.items():
        image = service.get("image", "")
        assert re.fullmatch(rf"{name}:\d+(\.\d+)*(-[a-z0-9]+)?", image), (
            f"service {name} runs image {image!r}: pin the official {name} image to a major "
            f"version tag (e.g. postgres:16-bookworm, redis:7.2-bookworm), never latest or "
            f"untagged"
        )

    images = {service.get("image") for service in airflow_services.values()}
    assert len(images) == 1, f"the Airflow services should all run one image, found {images}"
    for name, service in airflow_services.items():
        build = service["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (ROOT / context).resolve() == ROOT and dockerfile == "Dockerfile", (
            f"service {name} should build the project's ./Dockerfile (context .), builds {build}"
        )


def test_dockerfile_base_image_is_the_airflow_version_uv_lock_pins():
    airflow = _locked_version("apache-airflow")
    python = re.search(r'requires-python\s*=\s*"==(\d+\.\d+)', PYPROJECT.read_text())
    assert python, "pyproject.toml's requires-python should pin one Python minor (==3.X.*)"
    expected = f"apache/airflow:{airflow}-python{python[1]}"
    bases = [
        arguments.split()[0]
        for keyword, arguments in _dockerfile_instructions()
        if keyword == "FROM"
    ]
    assert bases, "Dockerfile has no FROM line"
    wrong = [base for base in bases if base != expected]
    assert not wrong, (
        f"Dockerfile builds FROM {wrong}, but uv.lock pins apache-airflow {airflow} and "
        f"pyproject.toml Python {python[1]}: every FROM should be {expected} (change the FROM "
        f"lines and uv.lock together)"
    )


def test_dockerfile_installs_the_locked_dependencies_and_the_project():
    instructions = _dockerfile_instructions()
    runs = "\n".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    for needed, why in [
        ("uv export --frozen --no-dev", "the dependencies come from uv.lock as committed"),
        ("--require-hashes", "pip checks each file against the lock's hashes"),
        ("--no-deps", "pip installs the locked closure and resolves nothing again"),
        ("--editable .", "the project is installed (its airflow.plugins entry point) in place"),
        ("python -m returnwatch.transform parse", "the transform DAG's dbt manifest is built"),
    ]:
        assert needed in runs, f"Dockerfile should RUN `{needed}`: {why}"
    copied = set()
    for line in (arguments for keyword, arguments in instructions if keyword == "COPY"):
        words = line.split()
        if any(word.startswith("--from=") for word in words):
            continue  # from another build stage, not from the build context
        copied |= {word.rstrip("/") for word in words[:-1] if not word.startswith("--")}
    for path in IMAGE_PATHS:
        assert path in copied, f"Dockerfile does not COPY {path}, which the image needs"


def test_dockerignore_lets_in_only_what_the_dockerfile_copies():
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", (
        ".dockerignore should start by excluding everything (`*`), so .env, data/ and .venv/ "
        "never reach the build context"
    )
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for path in IMAGE_PATHS:
        assert path in included, f".dockerignore excludes {path}, which the Dockerfile copies"
    leaked = included & {".env", "data", ".venv", ".airflow", ".tools"}
    assert not leaked, f".dockerignore lets {sorted(leaked)} into the build context"


# ---------------------------------------------------------------------------------- settings ---


def test_the_locked_packages_have_what_these_settings_make_airflow_load(airflow_env):
    """The image installs exactly uv.lock's packages, so the drivers and the executor the
    settings name must import in this environment, which uv.lock built."""
    from airflow import settings as airflow_settings

    common_env = airflow_env
    sync_url = common_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # Airflow 3 opens the metadata DB twice: with this URL, and through an async engine whose
    # URL it derives from it (postgresql+psycopg2 -> postgresql+asyncpg).
    async_url = airflow_settings._get_async_conn_uri_from_sync(sync_url)
    # Celery's result backend is SQLAlchemy too ("db+" + a URL): without a named driver
    # SQLAlchemy 2.1 picks psycopg (v3), which is not installed, and the worker dies at start.
    backend_url = common_env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+")
    for url in (sync_url, async_url, backend_url):
        driver = url.split(":", 1)[0].partition("+")[2]
        assert driver and importlib.util.find_spec(driver), (
            f"Airflow or Celery connects to PostgreSQL as {url.split(':', 1)[0]}://, but the "
            f"driver {driver!r} is not named or not in the locked environment: name an installed "
            f"driver (postgresql+psycopg2) or add it to pyproject.toml and re-lock"
        )
    # The worker imports these at start-up (shared by every task process it forks).
    for module in json.loads(common_env["AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"])["imports"]:
        assert importlib.util.find_spec(module), (
            f"AIRFLOW__CELERY__EXTRA_CELERY_CONFIG imports {module!r}, which is not installed"
        )
    try:
        importlib.import_module("airflow.providers.celery.executors.celery_executor_utils")
    except ImportError as error:
        pytest.fail(
            f"the CeleryExecutor (AIRFLOW__CORE__EXECUTOR) cannot be imported with the "
            f"locked packages: {error}. Constrain the package it names in "
            f"pyproject.toml to versions the Celery provider supports, and re-lock"
        )


def test_common_settings_use_celery_and_the_compose_services(common_env, airflow_env, roles):
    expected = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # the producer never retries: no per-event XCom backup (returnwatch.airflow_env)
        "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    for key, value in expected.items():
        assert common_env.get(key) == value, (
            f"x-airflow-common environment: {key} should be {value!r}, is {common_env.get(key)!r}"
        )
    execution_api = f"http://{roles['api-server']}:8080/execution/"
    assert common_env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == execution_api, (
        f"tasks reach Airflow through the api-server: AIRFLOW__CORE__EXECUTION_API_SERVER_URL "
        f"should be {execution_api}, is {common_env.get('AIRFLOW__CORE__EXECUTION_API_SERVER_URL')!r}"
    )
    for key, host in [
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "@postgres:"),
        ("AIRFLOW__CELERY__RESULT_BACKEND", "@postgres:"),
        ("AIRFLOW__CELERY__BROKER_URL", "@redis:"),
    ]:
        assert host in airflow_env.get(key, ""), (
            f"{key} should point at the compose service {host.strip('@:')}, is "
            f"{airflow_env.get(key)!r}"
        )
    for key in (
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    ):
        assert key in common_env, (
            f"x-airflow-common environment lacks {key}: every Airflow component needs the same one"
        )


def test_every_airflow_service_uses_the_common_settings_and_only_them(
    compose, airflow_services, common_env
):
    role_blocks = {
        key: (block, str(value))
        for block in ROLE_ENV_BLOCKS
        for key, value in (compose.get(block) or {}).items()
    }
    for name, service in airflow_services.items():
        environment = _environment(service)
        differing = sorted(k for k, v in common_env.items() if environment.get(k) != v)
        assert not differing, (
            f"service {name} does not use x-airflow-common's environment for {differing}: merge "
            f"it with `environment: {{<<: *airflow-common-env, ...}}`"
        )
        extra = sorted(
            k
            for k in environment
            if k not in common_env
            and k.startswith(("AIRFLOW__", "RETURNWATCH_"))
            and not (k in role_blocks and environment[k] == role_blocks[k][1])
        )
        assert not extra, (
            f"service {name} sets {extra} outside x-airflow-common and the role blocks "
            f"{ROLE_ENV_BLOCKS}: Airflow and returnwatch settings belong in those shared blocks"
        )


def test_dags_folder_and_data_dir_are_where_the_image_puts_them(common_env):
    instructions = _dockerfile_instructions()
    workdir = [arguments for keyword, arguments in instructions if keyword == "WORKDIR"][-1]
    assert any(
        keyword == "COPY" and re.fullmatch(r"(--\S+\s+)*dags/?\s+dags/?", arguments)
        for keyword, arguments in instructions
    ), "Dockerfile should copy dags/ into its WORKDIR"
    assert common_env.get("AIRFLOW__CORE__DAGS_FOLDER") == f"{workdir}/dags", (
        f"AIRFLOW__CORE__DAGS_FOLDER should be {workdir}/dags (where the Dockerfile copies the "
        f"DAGs), is {common_env.get('AIRFLOW__CORE__DAGS_FOLDER')!r}"
    )
    image_data_dir = [
        m[1]
        for keyword, arguments in instructions
        if keyword == "ENV"
        for m in [re.search(r"\bRETURNWATCH_DATA_DIR=(\S+)", arguments)]
        if m
    ]
    assert image_data_dir == [common_env.get("RETURNWATCH_DATA_DIR")], (
        "the Dockerfile's ENV RETURNWATCH_DATA_DIR and x-airflow-common's should be the same "
        "folder, so `docker compose run`/`exec` and the services use one data folder"
    )


def test_long_running_services_have_fitting_healthchecks(services, roles, airflow_cli):
    one_shot = roles["init"]
    for name, service in services.items():
        if name == one_shot:
            continue
        check = service.get("healthcheck") or {}
        test = check.get("test")
        assert test and not check.get("disable") and test != ["NONE"], (
            f"long-running service {name} has no healthcheck: depends_on service_healthy and "
            f"`docker compose ps` rely on it"
        )
    text = {
        name: " ".join(service["healthcheck"]["test"])
        for name, service in services.items()
        if name != one_shot
    }
    assert "pg_isready" in text["postgres"], (
        f"postgres should be checked with pg_isready: {text['postgres']}"
    )
    assert "redis-cli ping" in text["redis"], (
        f"redis should be checked with redis-cli ping: {text['redis']}"
    )
    for role, job_type in JOB_TYPES.items():
        name = roles[role]
        test = services[name]["healthcheck"]["test"]
        argv = shlex.split(test[1]) if test[0] == "CMD-SHELL" else test[1:]
        assert argv[:3] == ["airflow", "jobs", "check"] and job_type in argv, (
            f"service {name} should be checked with `airflow jobs check --job-type {job_type}`, "
            f"is {test}"
        )
        _parse(airflow_cli, argv[1:], f"healthcheck of {name}")
    api = text[roles["api-server"]]
    url = re.search(r"http://localhost:8080(/\S*)", api)
    assert url and url[1] in _routes_without_login(), (
        f"the api-server's healthcheck should GET a route of the installed Airflow's API that "
        f"needs no login (/api/v2/version or /api/v2/monitor/health), is {api}"
    )
    worker = text[roles["worker"]]
    assert "inspect ping" in worker and "celery@$${HOSTNAME}" in worker, (
        f"the worker should be checked with `celery ... inspect ping` on its own node, is {worker}"
    )
    app = re.search(r"--app\s+(\S+)\.app\b", worker)
    assert app and importlib.util.find_spec(app[1]), (
        f"the worker healthcheck's Celery app module does not exist in the installed Celery "
        f"provider: {worker}"
    )


def _routes_without_login() -> set[str]:
    """GET routes of the installed Airflow's REST API that need no login, from the OpenAPI
    document Airflow ships (a route needing a login lists `security`)."""
    package = Path(importlib.util.find_spec("airflow").submodule_search_locations[0])
    spec = yaml.load(
        (package / "api_fastapi/core_api/openapi/v2-rest-api-generated.yaml").read_text(),
        Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader),
    )
    return {
        path
        for path, methods in spec["paths"].items()
        if "get" in methods and "security" not in methods["get"]
    }


def test_services_start_in_order(services, roles):
    init = roles["init"]
    for name, service in services.items():
        if name in ("postgres", "redis"):
            continue
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"service {name}: depends_on should name conditions"
        for needed in ("postgres", "redis"):
            assert (depends.get(needed) or {}).get("condition") == "service_healthy", (
                f"service {name} should wait for {needed} to be healthy (depends_on condition "
                f"service_healthy)"
            )
        if name != init:
            assert (depends.get(init) or {}).get("condition") == "service_completed_successfully", (
                f"service {name} should start only after {init} migrated the DB (depends_on "
                f"{init}: condition service_completed_successfully)"
            )
    worker_needs = services[roles["worker"]]["depends_on"].get(roles["api-server"]) or {}
    assert worker_needs.get("condition") == "service_healthy", (
        "the worker's tasks talk to the api-server's execution API: it should wait for the "
        "api-server to be healthy"
    )


def test_data_lives_on_named_volumes_mounted_at_the_data_dir(compose, airflow_services, common_env):
    data_dir = common_env["RETURNWATCH_DATA_DIR"]
    declared = set(compose.get("volumes") or {})
    expected = {
        data_dir: "the warehouse, snapshot and dbt output",
        f"{data_dir}/archive": "every file ever received",
    }
    sources: dict[str, set[str]] = {target: set() for target in expected}
    for name, service in airflow_services.items():
        mounts = _volume_targets(service)
        for target, what in expected.items():
            assert target in mounts, (
                f"service {name} does not mount a volume at {target} ({what}): every Airflow "
                f"service must see the same data"
            )
            sources[target].add(mounts[target])
        for target, source in mounts.items():
            assert source in declared, (
                f"service {name} mounts {source!r} at {target}: only named volumes declared "
                f"under `volumes:` (no host paths; the image carries the code)"
            )
    for target, names in sources.items():
        assert len(names) == 1, f"services mount different volumes at {target}: {sorted(names)}"
    assert sources[data_dir] != sources[f"{data_dir}/archive"], (
        "the archive should be a volume of its own (its own backups), not the warehouse volume"
    )
    postgres_mounts = _volume_targets(compose["services"]["postgres"])
    assert set(postgres_mounts.values()) <= declared and postgres_mounts, (
        "postgres should keep its data on a named volume"
    )


def test_only_the_api_server_is_published_and_only_on_the_loopback(services, roles):
    api = roles["api-server"]
    for name, service in services.items():
        if name != api:
            assert not service.get("ports"), (
                f"service {name} publishes {service.get('ports')}: only the api-server is "
                f"reachable from the host (PostgreSQL and Redis stay on the compose network)"
            )
    ports = services[api].get("ports") or []
    assert len(ports) == 1, f"the api-server should publish one port, publishes {ports}"
    port = ports[0]
    if isinstance(port, dict):
        host_ip, target = port.get("host_ip"), str(port.get("target"))
    else:
        match = re.fullmatch(
            r"(?:(?P<ip>[\d.]+):)?(?P<published>\$\{[^}]*\}|\d+):(?P<target>\d+)"
            r"(?:/tcp)?",
            str(port),
        )
        assert match, f"cannot read the api-server's port mapping {port!r}"
        host_ip, target = match["ip"], match["target"]
    assert host_ip == "127.0.0.1", (
        f"the api-server is published on {host_ip or 'every interface'} ({port!r}): it must be "
        f"bound to 127.0.0.1 (SSH tunnel or a TLS reverse proxy in front)"
    )
    assert target == "8080", f"the api-server listens on 8080 in its container, mapping is {port!r}"


# ------------------------------------------------------------------------------------ secrets ---


def test_no_secret_is_written_in_the_compose_file(compose):
    problems = []
    for where, value in _strings(compose):
        # Passwords inside URLs (postgresql://user:PASSWORD@host, redis://:PASSWORD@host).
        for url in re.finditer(r"[a-z][a-z0-9+.-]*://([^/@\s]*)@", value):
            _, _, password = url[1].partition(":")
            if password and not re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", password):
                problems.append(
                    f"{where}: the password in {value!r} is not a ${{VAR:?...}} reference"
                )
    blocks = [
        ("x-airflow-common", compose["x-airflow-common"]),
        *((block, {"environment": compose.get(block) or {}}) for block in ROLE_ENV_BLOCKS),
    ]
    for service_name, service in [*blocks, *compose["services"].items()]:
        for key, value in _environment(service).items():
            if not SECRET_KEY_NAME.search(key) or key.endswith("_FILE"):
                continue
            required = re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value)
            optional = key in OPTIONAL_SECRETS and re.fullmatch(r"\$\{[A-Z0-9_]+:-\}", value)
            if not (required or optional):
                problems.append(
                    f"{service_name}: {key} is {value!r}; a secret must come from .env "
                    f"as ${{VAR:?message}} (no default)"
                )
    for config_name, config in (compose.get("configs") or {}).items():
        for line in str(config.get("content") or "").splitlines():
            if re.match(r"\s*requirepass\s", line) and not re.fullmatch(
                r"\s*requirepass\s+\$\{[A-Z0-9_]+:\?[^}]+\}\s*", line
            ):
                problems.append(f"configs.{config_name}: {line.strip()!r} is not a ${{VAR:?...}}")
    assert not problems, "secrets written into docker-compose.yaml:\n  " + "\n  ".join(problems)


def test_required_secrets_have_no_sample_value_in_env_example(compose_text, env_example):
    required = {m["name"] for m in _references(compose_text) if m["op"] == ":?"}
    with_values = sorted(
        name
        for name in required
        if env_example.get(name, {}).get("value") or env_example.get(name, {}).get("commented")
    )
    assert not with_values, (
        f".env.example gives {with_values} a value or comments them out; they are required "
        f"secrets: leave them empty (`NAME=`) so a copied .env cannot start with a known secret"
    )


# ------------------------------------------------------------------------- .env.example sync ---


def test_every_variable_is_documented_in_env_example_and_vice_versa(compose_text, env_example):
    without_escapes = compose_text.replace(_ESCAPED_DOLLAR, "")
    unbraced = sorted({m.group() for m in _UNBRACED.finditer(_REFERENCE.sub("", without_escapes))})
    assert not unbraced, (
        f"docker-compose.yaml uses {unbraced} without braces: write ${{NAME}} for .env settings "
        f"and $${{NAME}} for the container's own shell variables"
    )
    used = {m["name"] for m in _references(compose_text)}
    undocumented = sorted(used - set(env_example))
    unused = sorted(set(env_example) - used)
    assert not undocumented, (
        f"docker-compose.yaml uses {undocumented}, which .env.example does not document"
    )
    assert not unused, f".env.example documents {unused}, which docker-compose.yaml never uses"
    bare = sorted(name for name, v in env_example.items() if not v["documented"])
    assert not bare, f".env.example has no comment explaining {bare} (put it on the line above)"


def test_env_example_values_are_the_compose_defaults(compose_text, env_example):
    defaults: dict[str, set[str]] = {}
    for match in _references(compose_text):
        if match["op"] == ":-":
            defaults.setdefault(match["name"], set()).add(match["arg"])
    for name, values in defaults.items():
        assert len(values) == 1, f"docker-compose.yaml gives {name} different defaults: {values}"
        example = env_example.get(name)
        if example and not example["commented"]:
            assert example["value"] == next(iter(values)), (
                f".env.example sets {name}={example['value']!r} but docker-compose.yaml's default "
                f"is {next(iter(values))!r}: a deployment without .env would differ from the example"
            )


# ------------------------------------------------------------------------------- init service ---


def test_init_migrates_the_db_then_creates_the_one_slot_warehouse_pool(
    services, roles, airflow_cli
):
    script = services[roles["init"]]["command"]
    script = script[-1] if isinstance(script, list) else script
    lines = [line.strip() for line in script.splitlines()]
    assert "set -euo pipefail" in lines or "set -e" in lines, (
        "the init script should stop at the first failing command (set -e), or a failed "
        "migration would still let the other services start"
    )
    migrate = lines.index("airflow db migrate") if "airflow db migrate" in lines else None
    assert migrate is not None, "the init script should run `airflow db migrate`"
    pool_lines = [i for i, line in enumerate(lines) if line.startswith("airflow pools set ")]
    assert pool_lines, "the init script should create the warehouse pool (`airflow pools set`)"
    argv = shlex.split(lines[pool_lines[0]])
    args = _parse(airflow_cli, argv[1:], "the init script's pool command")
    assert (args.pool, args.slots) == (WAREHOUSE_POOL, 1), (
        f"the init script should create pool {WAREHOUSE_POOL!r} with 1 slot (DuckDB has one "
        f"writer), creates {args.pool!r} with {args.slots}"
    )
    assert not args.include_deferred, "the warehouse pool should not count deferred tasks"
    assert migrate < pool_lines[0], "the pool can only be created after `airflow db migrate`"


def test_init_writes_the_passwords_file_the_api_server_reads(services, roles, common_env):
    passwords_file = common_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    folder = passwords_file.rsplit("/", 1)[0]
    init, api = services[roles["init"]], services[roles["api-server"]]
    init_volume = _volume_targets(init).get(folder)
    assert init_volume, (
        f"the init service should mount a volume at {folder} to write {passwords_file}"
    )
    assert _volume_targets(api).get(folder) == init_volume, (
        f"the api-server should mount the same volume ({init_volume}) at {folder} to read the "
        f"passwords the init service writes"
    )
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in _command_text(init), (
        "the init script should write the file named by AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
    )
    admin_password = _environment(init).get("AIRFLOW_ADMIN_PASSWORD", "")
    assert admin_password.startswith("${AIRFLOW_ADMIN_PASSWORD:?"), (
        "the init service should take the admin's password from .env (AIRFLOW_ADMIN_PASSWORD, required)"
    )
    for name, service in services.items():
        if name != roles["init"]:
            assert "AIRFLOW_ADMIN_PASSWORD" not in _environment(service), (
                f"service {name} gets the admin password; only the init service needs it"
            )


# --------------------------------------------------------------------------- least privilege ---


def _secret_names(text: str) -> set[str]:
    return {m["name"] for m in _references(text) if SECRET_KEY_NAME.search(m["name"])}


def _secrets_reaching(compose: dict[str, Any], service: dict[str, Any]) -> dict[str, set[str]]:
    """Secret .env variables that reach a container, by the way they get there."""
    configs = compose.get("configs") or {}
    mounted = [c if isinstance(c, str) else c["source"] for c in service.get("configs") or []]
    healthcheck = (service.get("healthcheck") or {}).get("test") or []
    return {
        "environment": _secret_names("\n".join(_environment(service).values())),
        "command line": _secret_names(
            "\n".join(_command_argv(service) + [str(service.get("entrypoint") or "")])
        ),
        "health check": _secret_names("\n".join(map(str, healthcheck))),
        "configs": _secret_names(
            "\n".join(str(configs[name].get("content") or "") for name in mounted)
        ),
    }


def test_each_container_gets_only_the_secrets_it_needs(compose, services, roles):
    service_of = {**roles, "postgres": "postgres", "redis": "redis"}
    assert set(NEEDED_SECRETS) == set(service_of), (
        f"NEEDED_SECRETS should name every role, roles found: {sorted(service_of)}"
    )
    for role, name in service_of.items():
        reaching = _secrets_reaching(compose, services[name])
        got = set().union(*reaching.values())
        assert got == NEEDED_SECRETS[role], (
            f"service {name} ({role}) gets secrets {sorted(got)} ({reaching}); it needs exactly "
            f"{sorted(NEEDED_SECRETS[role])}: extra ones widen what a compromise of it exposes, "
            f"missing ones break it"
        )


def test_no_secret_is_on_a_command_line_or_in_a_health_check(compose, services):
    """`ps`, `docker inspect` and health-check logs show command lines: a secret there leaks.
    Redis, whose password used to be on its command line, reads it from a config file."""
    for name, service in services.items():
        reaching = _secrets_reaching(compose, service)
        assert not reaching["command line"] and not reaching["health check"], (
            f"service {name} has {reaching['command line'] | reaching['health check']} on a "
            f"command line or in its health check: pass secrets in a config file or the "
            f"environment"
        )
    assert _secrets_reaching(compose, services["redis"]) == {
        "environment": set(),
        "command line": set(),
        "health check": set(),
        "configs": {"REDIS_PASSWORD"},
    }, "redis should get its password from its config file only"
    redis_conf = services["redis"]["configs"][0]["target"]
    assert _command_argv(services["redis"]) == ["redis-server", redis_conf]


def test_only_the_writers_mount_the_data_read_write(compose, airflow_services, roles, common_env):
    data_dir = common_env["RETURNWATCH_DATA_DIR"]
    role_of = {name: role for role, name in roles.items()}
    for name, service in airflow_services.items():
        for volume in service.get("volumes") or []:
            if isinstance(volume, dict):
                target, read_only = volume["target"], bool(volume.get("read_only"))
            else:
                parts = volume.split(":")
                target, read_only = parts[1], len(parts) > 2 and "ro" in parts[2].split(",")
            if target != data_dir and not target.startswith(data_dir + "/"):
                continue
            writer = role_of.get(name) in DATA_WRITERS
            assert read_only != writer, (
                f"service {name} mounts {target} {'read-only' if read_only else 'read-write'}: "
                f"only {sorted(DATA_WRITERS)} write the data (the API server and the "
                f"returnwatch page it serves only read the snapshot)"
            )
