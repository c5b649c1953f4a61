"""The production stack on the loopback, for integration tests.

What this module owns: starting and stopping, on 127.0.0.1 only, what ``docker-compose.yaml``
runs in containers:

- Debian's PostgreSQL: Airflow's metadata DB and Celery's result backend (a throw-away cluster
  made with ``initdb`` in a temporary folder owned by ``postgres``; PostgreSQL refuses to run as
  root, so when the tests run as root its processes run as the ``postgres`` user);
- Redis: the Celery broker (with a password, as in compose; no persistence);
- Airflow with the CeleryExecutor: ``airflow db migrate``, the one-slot ``warehouse`` pool, then
  the api-server, scheduler, dag-processor, triggerer and one ``airflow celery worker``.

Settings: ``compose_settings()`` takes the Airflow services' settings from the compose file
(``x-airflow-common``'s ``environment:`` mapping plus the ``AIRFLOW__*`` keys services add for
their role, e.g. the Celery URLs), so the test runs what a deployment runs:
``${VAR}`` references are filled with values generated per run (``.env``'s secrets), service
host names become 127.0.0.1 with this stack's ports and container paths become this run's
folders. Only what must differ on a shared loopback (ports, AIRFLOW_HOME) and the test's
tuning are added on top (``ProductionStack._environment``).

Every process starts in its own session (process group) with its output in
``<workdir>/logs/<component>.log``. ``ProductionStack.stop()`` ends them all (SIGTERM, then
SIGKILL after a bounded wait, then any descendant that outlived its group), also after a start
that failed half-way. Every wait is bounded, and a wait that gives up says which component did
not come up and ends with the tail of its log.

``PipelineDriver`` triggers DAG runs through the REST API and waits for them (bounded), for
``tests/deploy/conftest.py``, which says in which order and why.

``MemorySampler`` measures the stack while it runs: the summed RSS (and PSS) of every process
of it (each component and all its descendants: PostgreSQL backends, Celery pool processes,
task processes with dbt inside them), sampled about once a second in a thread.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import yaml

from returnwatch import settings
from returnwatch.airflow_support import WAREHOUSE_POOL

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
COMPOSE_FILE = settings.PROJECT_DIR / "docker-compose.yaml"
# The venv's own airflow script: the stack runs the locked Airflow, whatever is on PATH.
AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))
ADMIN_USER = "admin"

# Bounded waits (seconds), several times what each takes here on 2 cores: PostgreSQL ~1 s,
# `airflow db migrate` on an empty database ~5 s, the Airflow components healthy ~20 s.
POSTGRES_READY_SECONDS = 60
REDIS_READY_SECONDS = 20
CLI_SECONDS = 300
AIRFLOW_READY_SECONDS = 180
STOP_GRACE_SECONDS = 20

# Our settings are the only Airflow/returnwatch settings the stack's processes see: anything the
# test process inherited (its own SQLite home, "everyone is admin") must not leak in.
_INHERITED_PREFIXES = ("AIRFLOW_", "_AIRFLOW_", "RETURNWATCH_", "SLACK_", "GX_")


class StackError(RuntimeError):
    """A component did not start or did not become ready in time (the message says which)."""


# ------------------------------------------------------------------------------ preconditions


def postgres_bindir() -> Path | None:
    """Debian's PostgreSQL server binaries (``initdb``, ``postgres``): newest installed major."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def missing_services() -> str | None:
    """Why the stack cannot start on this machine (for ``pytest.skip``), or None."""
    if postgres_bindir() is None:
        return (
            "PostgreSQL server binaries (initdb, postgres) are not installed: "
            "`make system-deps` installs Debian's postgresql"
        )
    if shutil.which("redis-server") is None:
        return "redis-server is not installed: `make system-deps` installs Debian's redis-server"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return (
                "running as root and there is no 'postgres' user to run PostgreSQL as "
                "(Debian's postgresql package creates it)"
            )
    return None


def free_port() -> int:
    """A TCP port free on the loopback now (the kernel picks it; tiny race until it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------ processes


@dataclass
class Component:
    """One long-running process of the stack, leader of its own process group."""

    name: str
    process: subprocess.Popen
    log_path: Path
    # PostgreSQL's postmaster: SIGINT is its "fast shutdown" (SIGTERM would wait for clients).
    stop_signal: int = signal.SIGTERM
    stopped: bool = field(default=False, init=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        return self.process.poll()

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        return "\n".join(text.splitlines()[-lines:])

    def processes(self) -> list[psutil.Process]:
        """This component's process and every descendant still alive."""
        try:
            leader = psutil.Process(self.pid)
            return [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Ask the component to stop, wait ``grace`` seconds, then kill whatever is left.

        Signals go to the process group only while its leader has not been reaped, so the group
        id is still ours. Descendants are listed first and killed by psutil (which checks that
        a pid was not reused): a task process or a backend that left the group must not outlive
        the stack. A second call does nothing: by then its pids may belong to someone else.
        """
        if self.stopped:
            return
        self.stopped = True
        descendants = self.processes()[1:]
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if self.stop_signal == signal.SIGTERM:
                    os.killpg(self.pid, signal.SIGTERM)
                else:
                    os.kill(self.pid, self.stop_signal)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=5)
        for process in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(descendants, timeout=5)


def _run_as(user: str | None) -> dict[str, Any]:
    """Popen arguments that run a child as ``user`` (root only; PostgreSQL refuses root)."""
    if user is None or os.geteuid() != 0:
        return {}
    return {"user": user, "group": user, "extra_groups": []}


def spawn(
    name: str,
    argv: list[str],
    *,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
) -> Component:
    """Start ``argv`` in its own session with stdout and stderr in ``log_dir/<name>.log``."""
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            **_run_as(user),
        )
    return Component(name, process, log_path, stop_signal)


def wait_until(
    what: str,
    check: Callable[[], T],
    *,
    timeout: float,
    watch: Iterable[Component] = (),
    interval: float = 0.5,
) -> T:
    """Call ``check`` until it returns something truthy; bounded by ``timeout`` seconds.

    Fails at once if a watched component exits, and on time-out with the last error seen and
    the log tail of every watched component.
    """
    watch = list(watch)
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        for component in watch:
            code = component.exit_code()
            if code is not None:
                raise StackError(
                    f"{component.name} exited with code {code} while waiting for "
                    f"{what}; last lines of {component.log_path}:\n{component.tail()}"
                )
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # noqa: BLE001 - not ready yet; kept for the message
            last_error = error
        if time.monotonic() >= deadline:
            tails = "".join(f"\n--- last lines of {c.log_path} ---\n{c.tail()}" for c in watch)
            raise StackError(
                f"{what}: not ready after {timeout:.0f} s"
                + (f" (last error: {last_error!r})" if last_error else "")
                + tails
            )
        time.sleep(interval)


# ------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class StackValues:
    """What this run of the stack generated or chose: ports, secrets, folders."""

    postgres_port: int
    redis_port: int
    api_port: int
    postgres_user: str
    postgres_password: str = field(repr=False)
    postgres_db: str
    redis_password: str = field(repr=False)
    admin_password: str = field(repr=False)
    fernet_key: str = field(repr=False)
    jwt_secret: str = field(repr=False)
    api_secret_key: str = field(repr=False)
    airflow_home: Path
    data_dir: Path

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    def compose_variables(self) -> dict[str, str]:
        """Values for the ``${VAR}`` references of docker-compose.yaml: what ``.env`` holds in a
        deployment (``.env.example`` documents each), generated for this run."""
        return {
            "POSTGRES_USER": self.postgres_user,
            "POSTGRES_PASSWORD": self.postgres_password,
            "POSTGRES_DB": self.postgres_db,
            "REDIS_PASSWORD": self.redis_password,
            "AIRFLOW_FERNET_KEY": self.fernet_key,
            "AIRFLOW_JWT_SECRET": self.jwt_secret,
            "AIRFLOW_API_SECRET_KEY": self.api_secret_key,
            "AIRFLOW_ADMIN_USERNAME": ADMIN_USER,
            "AIRFLOW_ADMIN_PASSWORD": self.admin_password,
            "AIRFLOW_API_PORT": str(self.api_port),
        }


def generate_values(workdir: Path) -> StackValues:
    """Fresh ports and secrets for one run: nothing is reused from a developer's setup."""
    home = workdir / "airflow"
    return StackValues(
        postgres_port=free_port(),
        redis_port=free_port(),
        api_port=free_port(),
        postgres_user="airflow",
        postgres_password=secrets.token_urlsafe(18),
        postgres_db="airflow",
        redis_password=secrets.token_urlsafe(24),
        admin_password=secrets.token_urlsafe(18),
        fernet_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        # The api-server wants a JWT secret of at least 64 bytes.
        jwt_secret=secrets.token_urlsafe(64),
        api_secret_key=secrets.token_urlsafe(32),
        airflow_home=home,
        data_dir=workdir / "data",
    )


# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR and $$ (a literal $),
# as docker compose interpolates them.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's variable interpolation of one value (nested defaults are not needed here)."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("named")
        op, arg = match.group("op"), match.group("arg") or ""
        value = variables.get(name)
        unset_or_empty = not value if op and op.startswith(":") else value is None
        if op in (":-", "-"):
            return arg if unset_or_empty else value
        if op in (":?", "?"):
            if unset_or_empty:
                raise StackError(
                    f"docker-compose.yaml needs {name} ({arg.strip() or 'required'})"
                    ", which the test does not provide: add it to "
                    "StackValues.compose_variables()"
                )
            return value
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""

    return _INTERPOLATION.sub(replace, text)


def read_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def compose_common_environment(compose: Mapping[str, Any]) -> dict[str, str]:
    """``x-airflow-common``'s ``environment:``: the settings every Airflow service shares."""
    common = compose.get("x-airflow-common")
    environment = common.get("environment") if isinstance(common, dict) else None
    if not environment:
        raise StackError(
            "docker-compose.yaml has no `x-airflow-common` with an `environment:` "
            "mapping: the integration test runs the Airflow services' shared "
            "settings from there"
        )
    if isinstance(environment, list):  # the "- KEY=value" form
        environment = dict(
            item.split("=", 1) if "=" in item else (item, "") for item in environment
        )
    return {str(k): "" if v is None else str(v) for k, v in environment.items()}


def compose_airflow_environment(compose: Mapping[str, Any]) -> dict[str, str]:
    """Every Airflow setting any Airflow service of the compose file gets: ``x-airflow-common``'s
    ``environment:`` plus the ``AIRFLOW__*`` keys services add for their role (least privilege:
    the Celery URLs only where Celery runs, the Fernet key only where connections are
    decrypted). The loopback stack runs all components with one environment, so it needs the
    union; two services giving one key different values is an error."""
    settings_ = compose_common_environment(compose)
    given_by: dict[str, str] = {}
    for name, service in (compose.get("services") or {}).items():
        if not isinstance(service, dict) or "build" not in service:
            continue  # PostgreSQL and Redis run their own images, not Airflow
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(
                item.split("=", 1) if "=" in item else (item, "") for item in environment
            )
        for key, value in environment.items():
            key, value = str(key), "" if value is None else str(value)
            if not key.startswith("AIRFLOW__"):
                continue  # e.g. the worker's SLACK_BOT_TOKEN, DUMB_INIT_SETSID
            if key in settings_ and settings_[key] != value:
                raise StackError(
                    f"docker-compose.yaml: service {name} sets {key} to a value "
                    f"other than {given_by.get(key, 'x-airflow-common')}'s"
                )
            settings_[key] = value
            given_by.setdefault(key, f"service {name}")
    return settings_


def service_hosts(compose: Mapping[str, Any], values: StackValues) -> dict[str, int]:
    """Compose service name -> the loopback port that stands in for it here.

    Found by what each service runs, not by its name: the PostgreSQL and Redis images, and the
    service whose command is Airflow's ``api-server`` (the execution API's host).
    """
    hosts: dict[str, int] = {}
    for name, service in (compose.get("services") or {}).items():
        service = service or {}
        image = str(service.get("image") or "")
        command = service.get("command") or ""
        command = " ".join(command) if isinstance(command, list) else str(command)
        if image.startswith("postgres"):
            hosts[name] = values.postgres_port
        elif image.startswith("redis"):
            hosts[name] = values.redis_port
        elif command.split()[:1] == ["api-server"]:
            hosts[name] = values.api_port
    return hosts


def _to_loopback(value: str, hosts: Mapping[str, int]) -> str:
    """Point a URL at a compose service (``redis://:pw@redis:6379/0``) to this stack's port."""
    if "://" not in value:
        return value
    parts = urlsplit(value)
    if parts.hostname not in hosts:
        return value
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@" if userinfo else ""
    return urlunsplit(parts._replace(netloc=f"{netloc}{LOOPBACK}:{hosts[parts.hostname]}"))


def _to_local_path(value: str, paths: Mapping[str, Path]) -> str:
    """A container path (``/opt/returnwatch/data/x``) as this run's folder (longest prefix)."""
    for prefix in sorted(paths, key=len, reverse=True):
        if value == prefix or value.startswith(prefix + "/"):
            return str(paths[prefix]) + value[len(prefix) :]
    return value


def compose_settings(
    values: StackValues,
    *,
    variables: Mapping[str, str],
    container_paths: Mapping[str, Path],
    path: Path = COMPOSE_FILE,
) -> dict[str, str]:
    """The compose file's shared Airflow settings, rewritten for this loopback stack.

    - ``${VAR...}`` are filled from ``variables`` (this run's ``.env``: fresh secrets, ports);
    - URLs naming a compose service (postgres, redis, the api-server) point at 127.0.0.1 and
      this stack's ports;
    - container paths (the data volume, the project in the image, Airflow's home) become this
      run's folders (``container_paths``: container prefix -> local folder).
    """
    compose = read_compose(path)
    hosts = service_hosts(compose, values)
    return {
        key: _to_local_path(_to_loopback(interpolate(raw, variables), hosts), container_paths)
        for key, raw in compose_airflow_environment(compose).items()
    }


# ------------------------------------------------------------------------------ REST API


class AirflowApi:
    """The stack's REST API (``/api/v2``) with a JWT from ``/auth/token`` (SimpleAuthManager)."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30) -> None:
        self.base_url = base_url
        self._client = httpx.Client(base_url=base_url, timeout=timeout)
        self._username, self._password = username, password
        self._token: str | None = None

    def close(self) -> None:
        self._client.close()

    def token(self) -> str:
        if self._token is None:
            answer = self._client.post(
                "/auth/token", json={"username": self._username, "password": self._password}
            )
            if answer.status_code != 201:
                raise StackError(
                    f"POST /auth/token as {self._username!r}: HTTP "
                    f"{answer.status_code} {answer.text[:300]}"
                )
            self._token = answer.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self._client.request(
            method, f"/api/v2{path}", headers={"Authorization": f"Bearer {self.token()}"}, **kwargs
        )
        if answer.status_code >= 400:
            raise StackError(
                f"{method} /api/v2{path}: HTTP {answer.status_code} {answer.text[:500]}"
            )
        return answer.json() if answer.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health`` (no login needed): metadatabase, scheduler, triggerer,
        dag processor."""
        answer = self._client.get("/api/v2/monitor/health")
        answer.raise_for_status()
        return answer.json()


# ------------------------------------------------------------------------------ the stack


@dataclass
class ProductionStack:
    """PostgreSQL, Redis and Airflow (CeleryExecutor, one worker) on 127.0.0.1.

    ``variables`` are more ``.env`` values for the compose file's ``${VAR}`` references (the
    replay mirror's base URLs, the worker concurrency); ``tuning`` is test-only Airflow
    settings added last (loop timings). Use as a context manager; ``stop()`` is safe at any
    point of ``start()``.
    """

    # repr=False: pytest prints fixtures in failure reports, and values and env hold secrets.
    workdir: Path
    variables: Mapping[str, str] = field(default_factory=dict, repr=False)
    tuning: Mapping[str, str] = field(default_factory=dict, repr=False)
    expected_dags: tuple[str, ...] = field(default=(), repr=False)
    compose_file: Path = field(default=COMPOSE_FILE, repr=False)
    values: StackValues = field(init=False, repr=False)
    env: dict[str, str] = field(init=False, repr=False)
    components: list[Component] = field(init=False, default_factory=list, repr=False)
    timings: dict[str, float] = field(init=False, default_factory=dict, repr=False)
    logs: Path = field(init=False, repr=False)
    memory: MemorySampler = field(init=False, repr=False)
    started_at: dt.datetime | None = field(init=False, default=None)
    _pg_dir: Path | None = field(init=False, default=None, repr=False)
    _api: AirflowApi | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.values = generate_values(self.workdir)
        self.logs = self.workdir / "logs"
        self.env = self._environment()
        # Sampled from the first process started to the last one stopped.
        self.memory = MemorySampler(lambda: list(self.components))

    # -------------------------------------------------------------- what other code reads

    @property
    def api_url(self) -> str:
        return self.values.api_url

    @property
    def username(self) -> str:
        return ADMIN_USER

    @property
    def password(self) -> str:
        return self.values.admin_password

    @property
    def data_dir(self) -> Path:
        """RETURNWATCH_DATA_DIR of the stack's processes (the compose file's data volume)."""
        return Path(self.env["RETURNWATCH_DATA_DIR"])

    @property
    def passwords_file(self) -> Path:
        return Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])

    @property
    def airflow_home(self) -> Path:
        return self.values.airflow_home

    @property
    def api(self) -> AirflowApi:
        if self._api is None:
            self._api = AirflowApi(self.api_url, self.username, self.password)
        return self._api

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def metadata_db(self) -> Any:
        """A psycopg2 connection to Airflow's metadata DB (close it when done)."""
        import psycopg2

        v = self.values
        return psycopg2.connect(
            host=LOOPBACK,
            port=v.postgres_port,
            user=v.postgres_user,
            password=v.postgres_password,
            dbname=v.postgres_db,
            connect_timeout=5,
        )

    def airflow(
        self, *args: str, timeout: float = CLI_SECONDS, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command with the stack's settings (as ops would in a container)."""
        try:
            result = subprocess.run(
                [AIRFLOW_BIN, *args],
                env=self.env,
                cwd=self.workdir,
                capture_output=True,
                text=True,
                timeout=timeout,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as expired:
            raise StackError(
                f"`airflow {' '.join(args)}` did not finish in {timeout:.0f} s; "
                f"output so far:\n{_text(expired.stdout)}{_text(expired.stderr)}"
            ) from None
        if check and result.returncode != 0:
            output = (result.stdout + result.stderr).splitlines()[-40:]
            raise StackError(
                f"`airflow {' '.join(args)}` exited with {result.returncode}:\n" + "\n".join(output)
            )
        return result

    # -------------------------------------------------------------- lifecycle

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        began = time.monotonic()
        self.started_at = dt.datetime.now(dt.UTC)
        self.memory.start()
        for folder in (self.logs, self.airflow_home, self.data_dir / "archive"):
            folder.mkdir(parents=True, exist_ok=True)
        self._write_passwords_file()
        self._start_postgres()
        self._start_redis()
        self._timed("airflow db migrate", lambda: self.airflow("db", "migrate"))
        # What the compose file's init service does: DuckDB has one writer, so every task that
        # writes the warehouse runs in this one-slot pool.
        self._timed(
            "warehouse pool",
            lambda: self.airflow(
                "pools",
                "set",
                WAREHOUSE_POOL,
                "1",
                "DuckDB allows one writer: every task that writes the warehouse runs here.",
            ),
        )
        self._start_airflow()
        self.timings["start (total)"] = time.monotonic() - began

    def stop(self) -> None:
        """Stop everything this stack started, newest first (Airflow before its databases)."""
        if self._api is not None:
            self._api.close()
            self._api = None
        for component in reversed(self.components):
            component.stop()
        self.memory.stop()
        if self._pg_dir is not None and all(c.exit_code() is not None for c in self.components):
            shutil.rmtree(self._pg_dir, ignore_errors=True)

    # -------------------------------------------------------------- parts

    def _environment(self) -> dict[str, str]:
        """The environment of every Airflow process: the compose file's shared settings, then
        what differs on the loopback, then the test's tuning."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
        shared = compose_settings(
            self.values,
            path=self.compose_file,
            variables={**self.values.compose_variables(), **self.variables},
            container_paths={
                # The named volume `warehouse` (RETURNWATCH_DATA_DIR; `archive` inside it).
                "/opt/returnwatch/data": self.values.data_dir,
                # The project as the Dockerfile copies it into the image.
                "/opt/returnwatch": settings.PROJECT_DIR,
                # The image's AIRFLOW_HOME (logs, the passwords file's volume).
                "/opt/airflow": self.values.airflow_home,
            },
        )
        loopback = {
            # A private Airflow home: never the project's .airflow/ nor ~/airflow.
            "AIRFLOW_HOME": str(self.values.airflow_home),
            # In compose the api-server listens on 8080 inside its container; here on a free port
            # of the loopback, which is also what tasks and links are given.
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__PORT": str(self.values.api_port),
            "AIRFLOW__API__BASE_URL": self.values.api_url,
            # In containers each service has its own network namespace; here they share one, so
            # the worker's and the triggerer's log servers need free ports of their own.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        return {**base, **shared, **loopback, **self.tuning}

    def _timed(self, what: str, step: Callable[[], T]) -> T:
        began = time.monotonic()
        try:
            return step()
        finally:
            self.timings[what] = time.monotonic() - began

    def _write_passwords_file(self) -> None:
        """SimpleAuthManager's passwords file, as the compose file's airflow-init writes it from
        ``.env`` (the api-server then generates no password of its own and prints none)."""
        path = self.passwords_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({ADMIN_USER: self.values.admin_password}) + "\n")
        path.chmod(0o600)

    def _start_postgres(self) -> None:
        began = time.monotonic()
        bindir = postgres_bindir()
        if bindir is None:
            raise StackError(missing_services() or "PostgreSQL binaries not found")
        user = "postgres" if os.geteuid() == 0 else None
        # Its own folder outside the workdir: when we are root, the workdir is root's (mode 700)
        # and the postgres user could not reach into it.
        self._pg_dir = Path(tempfile.mkdtemp(prefix="returnwatch-pg-"))
        if user:
            shutil.chown(self._pg_dir, user, user)
        cluster, sockets = self._pg_dir / "cluster", self._pg_dir / "sockets"
        password_file = self._pg_dir / "pwfile"
        for path in (cluster, sockets):
            path.mkdir(mode=0o700)
        password_file.write_text(self.values.postgres_password + "\n")
        password_file.chmod(0o600)
        if user:
            for path in (cluster, sockets, password_file):
                shutil.chown(path, user, user)
        initdb = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(cluster),
                "-U",
                self.values.postgres_user,
                f"--pwfile={password_file}",
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self._pg_dir,
            **_run_as(user),
        )
        password_file.unlink()
        if initdb.returncode != 0:
            raise StackError(
                f"initdb failed ({initdb.returncode}):\n{initdb.stdout}{initdb.stderr}"
            )
        postgres = spawn(
            "postgres",
            [
                str(bindir / "postgres"),
                "-D",
                str(cluster),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-c",
                f"port={self.values.postgres_port}",
                "-c",
                f"unix_socket_directories={sockets}",
                # A throw-away cluster: durability buys nothing here and costs time on every commit.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            log_dir=self.logs,
            cwd=self._pg_dir,
            user=user,
            stop_signal=signal.SIGINT,
        )
        self.components.append(postgres)

        def database_ready() -> bool:
            import psycopg2

            v = self.values
            with contextlib.closing(
                psycopg2.connect(
                    host=LOOPBACK,
                    port=v.postgres_port,
                    user=v.postgres_user,
                    password=v.postgres_password,
                    dbname="postgres",
                    connect_timeout=3,
                )
            ) as con:
                con.autocommit = True
                with con.cursor() as cur:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [v.postgres_db])
                    if cur.fetchone() is None:
                        cur.execute(f'CREATE DATABASE "{v.postgres_db}"')
            return True

        wait_until(
            f"PostgreSQL on {LOOPBACK}:{self.values.postgres_port}",
            database_ready,
            timeout=POSTGRES_READY_SECONDS,
            watch=[postgres],
        )
        self.timings["postgres"] = time.monotonic() - began

    def _start_redis(self) -> None:
        began = time.monotonic()
        redis_dir = self.workdir / "redis"
        redis_dir.mkdir(exist_ok=True)
        # The settings in a file of mode 600 rather than on the command line, where `ps` would
        # show the password. No persistence: a broker's queue of a test run is worth nothing.
        config = redis_dir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    f"bind {LOOPBACK}",
                    f"port {self.values.redis_port}",
                    f"requirepass {self.values.redis_password}",
                    'save ""',
                    "appendonly no",
                    f"dir {redis_dir}",
                    "",
                ]
            )
        )
        config.chmod(0o600)
        redis = spawn(
            "redis",
            [shutil.which("redis-server") or "redis-server", str(config)],
            log_dir=self.logs,
            cwd=redis_dir,
        )
        self.components.append(redis)

        def pong() -> bool:
            import redis as redis_client

            client = redis_client.Redis(
                host=LOOPBACK,
                port=self.values.redis_port,
                password=self.values.redis_password,
                socket_timeout=2,
                socket_connect_timeout=2,
            )
            try:
                return bool(client.ping())
            finally:
                client.close()

        wait_until(
            f"Redis on {LOOPBACK}:{self.values.redis_port}",
            pong,
            timeout=REDIS_READY_SECONDS,
            watch=[redis],
        )
        self.timings["redis"] = time.monotonic() - began

    def _start_airflow(self) -> None:
        began = time.monotonic()
        commands = {
            "api-server": ["api-server", "--host", LOOPBACK, "--port", str(self.values.api_port)],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer"],
            # As docker-compose.yaml runs it: the concurrency comes from the shared settings.
            "celery-worker": ["celery", "worker"],
        }
        started = []
        for name, args in commands.items():
            component = spawn(
                name, [AIRFLOW_BIN, *args], log_dir=self.logs, env=self.env, cwd=self.workdir
            )
            self.components.append(component)
            started.append(component)

        wait_until(
            f"Airflow api-server on {self.api_url}",
            self.api.health,
            timeout=AIRFLOW_READY_SECONDS,
            watch=started,
        )

        def healthy() -> bool:
            health = self.api.health()
            return all(
                (health.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            )

        wait_until(
            "Airflow scheduler, triggerer and dag-processor heartbeats (/monitor/health)",
            healthy,
            timeout=AIRFLOW_READY_SECONDS,
            watch=started,
        )
        worker = self.component("celery-worker")
        # Celery's own start-up line: the worker is connected to the broker and consuming.
        wait_until(
            "Celery worker connected to Redis",
            lambda: " ready." in worker.tail(200),
            timeout=AIRFLOW_READY_SECONDS,
            watch=started,
        )
        self.timings["airflow components"] = time.monotonic() - began
        if self.expected_dags:
            self._wait_for_dags(started)

    def _wait_for_dags(self, watch: list[Component]) -> None:
        began = time.monotonic()

        def parsed() -> bool:
            errors = self.api.get("/importErrors")
            if errors.get("total_entries"):
                raise StackError(f"DAG import errors: {json.dumps(errors)[:2000]}")
            dags = {d["dag_id"] for d in self.api.get("/dags", limit=100)["dags"]}
            return set(self.expected_dags) <= dags

        try:
            wait_until(
                f"the dag-processor to parse {', '.join(self.expected_dags)}",
                parsed,
                timeout=AIRFLOW_READY_SECONDS,
                watch=[self.component("dag-processor"), *watch],
            )
        finally:
            self.timings["DAGs parsed"] = time.monotonic() - began


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


# ------------------------------------------------------------------------------ the pipeline

# The project's DAGs: the four sources (three monthly ones found on their pages, and the daily
# HHS export), dbt, and the monitors.
MONTHLY_SOURCES = ("hhs_uc_monthly", "cbp_encounters_monthly", "segob_bulletin_monthly")
DAILY_SOURCE = "hhs_uc_daily"
SOURCE_DAGS = (*MONTHLY_SOURCES, DAILY_SOURCE)
ALL_DAGS = (*SOURCE_DAGS, "transform", "monitor")

POLL_SECONDS = 2.0
FINISHED = {"success", "failed"}


@dataclass
class DagRunResult:
    dag_id: str
    run_id: str
    run_type: str
    logical_date: str | None
    state: str
    seconds: float  # from the run's start to its end, as Airflow recorded them

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


@dataclass
class PipelineReport:
    """What one pass of the pipeline did: each DAG's run, the wall time, the stack's memory."""

    mirror_as_of: dt.date
    runs: dict[str, DagRunResult] = field(default_factory=dict)
    seconds: float = 0.0
    stack_start_seconds: float = 0.0
    memory: dict[str, Any] = field(default_factory=dict)
    # The latency benchmark (tests/support/pipeline_latency.py): when the mirror published the
    # new files, and the sha256 of the files it served before (not new).
    published_at: dt.datetime | None = None
    held_back: set[str] = field(default_factory=set)

    def summary(self) -> str:
        lines = [
            f"pipeline on the mirror as of {self.mirror_as_of}: {self.seconds:.0f} s "
            f"(stack start {self.stack_start_seconds:.0f} s)"
        ]
        lines += [
            f"  {r.dag_id:<24} {r.state:<8} {r.seconds:6.0f} s  {r.run_type} {r.run_id}"
            for r in self.runs.values()
        ]
        lines.append(
            f"  stack's peak memory: RSS {self.memory.get('peak_total_rss_mib')} MiB, "
            f"PSS {self.memory.get('peak_total_pss_mib')} MiB; peak RSS by component "
            f"(MiB): {self.memory.get('peak_rss_mib_by_component')}"
        )
        return "\n".join(lines)


class PipelineDriver:
    """Triggers DAG runs through the REST API and waits for them, every wait bounded."""

    def __init__(self, stack: ProductionStack) -> None:
        self.stack = stack
        self.api = stack.api

    def unpause(self, dag_id: str) -> None:
        self.api.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger_latest_slot(self, dag_id: str) -> str:
        """Trigger ``dag_id`` for the cron slot the scheduler would run on unpausing it, then
        unpause it; returns the run id. The scheduler then finds the slot taken and adds no run
        of its own (why this matters: tests/deploy/conftest.py)."""
        slot = self.api.get(f"/dags/{dag_id}")["next_dagrun_logical_date"]
        if slot is None:
            raise StackError(f"{dag_id} has no next cron slot: is it scheduled on a cron?")
        run = self.api.request(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": slot, "conf": {}}
        )
        self.unpause(dag_id)
        return run["dag_run_id"]

    def wait_for_new_run(self, dag_id: str, *, timeout: float) -> str:
        """The run id of ``dag_id``'s first run (for a DAG the scheduler triggers itself)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.api.get(f"/dags/{dag_id}/dagRuns", order_by="run_after")["dag_runs"]
            if runs:
                return runs[0]["dag_run_id"]
            time.sleep(POLL_SECONDS)
        raise StackError(
            f"no run of {dag_id} appeared within {timeout:.0f} s" + self._log_tails("scheduler")
        )

    def wait(self, runs: dict[str, str], timeout: float) -> dict[str, DagRunResult]:
        """Wait until every run in ``runs`` (dag_id -> run_id) has finished; their results."""
        deadline = time.monotonic() + timeout
        pending = dict(runs)
        results: dict[str, DagRunResult] = {}
        while pending:
            for dag_id, run_id in list(pending.items()):
                run = self.api.get(f"/dags/{dag_id}/dagRuns/{run_id}")
                if run["state"] in FINISHED:
                    results[dag_id] = _result(run)
                    del pending[dag_id]
            if not pending:
                break
            if time.monotonic() >= deadline:
                raise StackError(
                    f"DAG runs still going after {timeout:.0f} s:\n"
                    + "\n".join(self._describe(d, r) for d, r in pending.items())
                    + self._log_tails("scheduler", "celery-worker")
                )
            time.sleep(POLL_SECONDS)
        return results

    def settle(self, timeout: float = 120) -> None:
        """Wait until no DAG has a queued or running run, then pause every DAG."""
        deadline = time.monotonic() + timeout
        while True:
            active = [
                f"{r['dag_id']} {r['dag_run_id']} ({r['state']})"
                for state in ("queued", "running")
                for r in self.api.get("/dags/~/dagRuns", state=state)["dag_runs"]
            ]
            if not active:
                break
            if time.monotonic() >= deadline:
                raise StackError(f"runs still active {timeout:.0f} s after the pipeline: {active}")
            time.sleep(POLL_SECONDS)
        for dag_id in ALL_DAGS:
            self.api.request("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def _describe(self, dag_id: str, run_id: str) -> str:
        tasks = self.api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000)[
            "task_instances"
        ]
        by_state: dict[str, list[str]] = {}
        for ti in tasks:
            label = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
            by_state.setdefault(str(ti["state"]), []).append(label)
        return f"  {dag_id} {run_id}: " + "; ".join(
            f"{state}: {', '.join(labels[:8])}{' …' if len(labels) > 8 else ''}"
            for state, labels in sorted(by_state.items())
        )

    def _log_tails(self, *names: str) -> str:
        return "".join(
            f"\n--- last lines of {self.stack.component(n).log_path} ---\n"
            f"{self.stack.component(n).tail(30)}"
            for n in names
        )


def _result(run: dict[str, Any]) -> DagRunResult:
    started, ended = run.get("start_date"), run.get("end_date")
    seconds = 0.0
    if started and ended:
        seconds = (
            dt.datetime.fromisoformat(ended) - dt.datetime.fromisoformat(started)
        ).total_seconds()
    return DagRunResult(
        dag_id=run["dag_id"],
        run_id=run["dag_run_id"],
        run_type=run["run_type"],
        logical_date=run.get("logical_date"),
        state=run["state"],
        seconds=seconds,
    )


# ------------------------------------------------------------------------------ memory


def _pss_bytes(process: psutil.Process) -> int:
    """Proportional set size: each shared page counted once, split between its sharers
    (``/proc/<pid>/smaps_rollup``, Linux 4.14+); 0 where the kernel does not provide it."""
    try:
        with open(f"/proc/{process.pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


@dataclass
class MemorySampler:
    """The stack's memory, sampled every ``interval`` seconds in a daemon thread.

    Per sample, for each component (its process and all descendants) and in total:

    - RSS, what the issue asks for. It counts a page shared between forked processes
      (PostgreSQL's backends, Celery's pool and the task processes forked from it) once per
      process, so the total errs high: an upper bound for sizing a machine;
    - PSS, which counts each shared page once: what the stack really takes.
    """

    components: Callable[[], list[Component]]
    interval: float = 1.0
    samples: int = 0
    peak_total_rss: int = 0
    peak_total_pss: int = 0
    peak_rss_by_component: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stack-memory", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def sample(self) -> None:
        total_rss = total_pss = 0
        for component in self.components():
            rss = 0
            for process in component.processes():
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    rss += process.memory_info().rss
                    total_pss += _pss_bytes(process)
            total_rss += rss
            self.peak_rss_by_component[component.name] = max(
                rss, self.peak_rss_by_component.get(component.name, 0)
            )
        self.peak_total_rss = max(self.peak_total_rss, total_rss)
        self.peak_total_pss = max(self.peak_total_pss, total_pss)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def report(self) -> dict[str, Any]:
        mib = 1024 * 1024
        return {
            "peak_total_rss_mib": round(self.peak_total_rss / mib),
            "peak_total_pss_mib": round(self.peak_total_pss / mib),
            "peak_rss_mib_by_component": {
                name: round(value / mib)
                for name, value in sorted(self.peak_rss_by_component.items())
            },
            "samples": self.samples,
        }
