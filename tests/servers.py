"""Throwaway PostgreSQL and MLflow tracking servers on 127.0.0.1, for the tests and benchmarks.

``tracking_server()`` starts a private PostgreSQL cluster in a temporary directory, creates a
database, starts ``mlflow server`` on it with default settings (artifacts proxied by the server
into its working directory), waits for ``/health``, warms it up unless told not to, and yields
the server's URL; everything is stopped and deleted on exit, also after errors.

Needs Debian's PostgreSQL binaries (``apt-get install -y postgresql``) and ``psycopg2-binary``
in the Python environment that runs ``mlflow server``. PostgreSQL refuses to run as root: as
root, the cluster belongs to the ``postgres`` system user and its commands run via ``runuser``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib.util
import io
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_DB_USER = "mlflow_tree"
_DB_NAME = "mlflow"
_SOCKET_PORT = 5432


class ServerError(Exception):
    """A server could not be started; the message says what to install or where the log is."""


@dataclass(frozen=True)
class Database:
    uri: str
    # The postmaster: with its children, every process of the cluster.
    pid: int


@dataclass(frozen=True)
class TrackingServer:
    url: str
    backend_store_uri: str
    log: Path
    # Process ids whose process trees make up the server (for CPU accounting).
    pids: tuple[int, ...] = ()


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that refuses connections for as long as this lasts.

    Bound without listening, so that no server started meanwhile takes it: a port that was
    merely free a moment ago can be, by another test's server on a busy machine.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without MLFLOW_*/PYTEST_* settings that would leak in, and
    with telemetry off: nothing started here may reach any address but 127.0.0.1."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "PYTEST_")) and key != "DO_NOT_TRACK"
    }
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    env.update(extra or {})
    return env


def postgres_available() -> str | None:
    """Why a tracking server cannot be started here, or None when it can."""
    try:
        _postgres_bin()
    except ServerError as error:
        return str(error)
    if importlib.util.find_spec("psycopg2") is None:
        return "the PostgreSQL backend needs psycopg2: pip install psycopg2-binary"
    return None


def _postgres_bin() -> Path:
    # Debian installs the server binaries off PATH, one directory per major version.
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: (
            int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ServerError(
        "PostgreSQL is not installed: apt-get update && apt-get install -y postgresql"
    )


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else command


def _run(command: list[str], owner: str | None, timeout: float) -> None:
    result = subprocess.run(
        _as_owner(command, owner),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise ServerError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


@contextlib.contextmanager
def postgres() -> Iterator[Database]:
    """A fresh PostgreSQL cluster on a free port of 127.0.0.1, with an empty database."""
    bindir = _postgres_bin()
    owner = None
    if os.geteuid() == 0:
        owner = "postgres"
        try:
            account = pwd.getpwnam(owner)
        except KeyError:
            raise ServerError("running as root needs the 'postgres' system user") from None
    # Its own top-level temporary directory: as root, the postgres user must be able to reach
    # it, and a directory made by mkdtemp is private to its creator.
    base = Path(tempfile.mkdtemp(prefix="mlflow-tree-postgres-"))
    if owner:
        os.chown(base, account.pw_uid, account.pw_gid)
    data, sockets, log = base / "data", base / "sockets", base / "postgres.log"
    started = False
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                _DB_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            owner,
            timeout=120,
        )
        _run(["mkdir", "-p", str(sockets)], owner, timeout=10)
        # No TCP port at all: only a Unix socket in our own directory, so no other cluster or
        # test can hold the address (the system's /var/run/postgresql may not exist or belong
        # to another cluster). The port number only names the socket file.
        options = f"-c listen_addresses='' -p {_SOCKET_PORT} -c unix_socket_directories={sockets}"
        _run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            owner,
            timeout=90,
        )
        started = True
        _run(
            [
                str(bindir / "createdb"),
                "-h",
                str(sockets),
                "-p",
                str(_SOCKET_PORT),
                "-U",
                _DB_USER,
                _DB_NAME,
            ],
            owner,
            timeout=60,
        )
        # The driver is named: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3.
        uri = f"postgresql+psycopg2://{_DB_USER}@/{_DB_NAME}?host={sockets}&port={_SOCKET_PORT}"
        yield Database(uri, _postmaster_pid(data) or 0)
    finally:
        if started:
            try:
                _run(
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        "30",
                        "stop",
                    ],
                    owner,
                    timeout=60,
                )
            except (ServerError, subprocess.TimeoutExpired):
                _kill_postmaster(data)
        shutil.rmtree(base, ignore_errors=True)


def another_database(database: Database, name: str) -> Database:
    """An empty database ``name`` in the cluster of ``database``: a database is made in a moment,
    a cluster takes seconds to start."""
    import sqlalchemy

    url = sqlalchemy.make_url(database.uri)
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return Database(url.set(database=name).render_as_string(hide_password=False), database.pid)


def _postmaster_pid(data: Path) -> int | None:
    # The first line of postmaster.pid (readable by us: we are its owner or root).
    try:
        return int((data / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kill_postmaster(data: Path) -> None:
    # Last resort, only for the server we started.
    pid = _postmaster_pid(data)
    if pid is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


# uvicorn (MLflow 3) and gunicorn (MLflow 2) say where they listen, the port they were given
# (0) replaced by the one they bound.
_LISTENING = re.compile(rb"(?:Uvicorn running on|Listening at:) (http://127\.0\.0\.1:[1-9][0-9]*)")


def _listening_url(log: Path) -> str:
    """The server's URL once its log says where it listens, else ""."""
    found = _LISTENING.search(log.read_bytes())
    return found.group(1).decode() if found else ""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The server leads its own process group (start_new_session), workers included.
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def mlflow_server(
    backend_store_uri: str,
    workdir: Path,
    startup_timeout: float = 180.0,
    extra_args: tuple[str, ...] = (),
    proxied: bool = False,
    jobs: bool = False,
) -> Iterator[TrackingServer]:
    """``mlflow server`` with default settings (plus ``extra_args``) on 127.0.0.1.

    ``jobs=False`` turns off MLflow 3's job execution, which starts several job consumer
    processes beside the server that import MLflow each: the tests use no MLflow jobs.
    """
    # The server runs in this interpreter's environment: check its driver here, not in a log.
    if backend_store_uri.startswith("postgresql") and importlib.util.find_spec("psycopg2") is None:
        raise ServerError("the PostgreSQL backend needs psycopg2: pip install psycopg2-binary")
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "mlflow-server.log"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        # The tests read artifacts from their own process, which MLflow 2 cannot do for proxied
        # ones unless the process's tracking URI is the server: a directory of the server's.
        *(() if proxied else ("--default-artifact-root", str(workdir / "artifacts"))),
        "--host",
        "127.0.0.1",
        # The server binds a port the system picks and says which in its log: a port found
        # free here could be taken by another test's server before this one binds it.
        "--port",
        "0",
        *extra_args,
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=clean_env({} if jobs else {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Bounded wait: the first start migrates the database, which takes a while.
        deadline = time.monotonic() + startup_timeout
        url = ""
        while not url or not _healthy(url):
            url = url or _listening_url(log)
            if process.poll() is not None:
                raise ServerError(f"mlflow server exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise ServerError(f"mlflow server not healthy after {startup_timeout:g} s")
            time.sleep(0.5)
        yield TrackingServer(url, backend_store_uri, log, pids=(process.pid,))
    finally:
        _stop(process)


# Threads calling a fresh server at once, and rounds of calls each: enough for every one of its
# workers (4 by default) to serve the calls the uploader makes.
_WARM_UP_THREADS = 8
_WARM_UP_ROUNDS = 2


def warm_up(url: str) -> None:
    """Make the calls the uploader makes, from several threads at once, until each is answered.

    A fresh ``mlflow server`` answers ``/health`` long before its workers have imported what
    the tracking API needs: under load the first calls took many seconds. Tests that measure
    an upload must not measure that.
    """
    from concurrent.futures import ThreadPoolExecutor

    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)

    def calls(thread: int) -> None:
        name = f"warm-up-{thread}"
        found = client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found else client.create_experiment(name)
        for _round in range(_WARM_UP_ROUNDS):
            run = client.create_run(experiment_id, tags={"warm-up": "yes"})
            run_id = run.info.run_id
            client.log_batch(
                run_id,
                metrics=[Metric("m", 1.0, 0, 0)],
                params=[Param(f"p{_round}", "v")],
                tags=[RunTag("t", "v")],
            )
            client.set_terminated(run_id, "FINISHED")
            client.search_runs([experiment_id], filter_string="tags.`warm-up` = 'yes'")

    # MLflow prints a link for every run it ends: not the tests' output.
    with contextlib.redirect_stdout(io.StringIO()), ThreadPoolExecutor(_WARM_UP_THREADS) as pool:
        # list(): raise the first call's error, if any
        list(pool.map(calls, range(_WARM_UP_THREADS)))


@contextlib.contextmanager
def tracking_server(
    workdir: Path,
    warm: bool = True,
    proxied: bool = False,
    database: Database | None = None,
    jobs: bool = False,
) -> Iterator[TrackingServer]:
    """PostgreSQL plus ``mlflow server`` on it, both on 127.0.0.1, both gone on exit.

    ``warm=False`` leaves the server as a user's freshly started one: its first calls are slow.
    With ``database`` the server uses that empty database of a cluster the caller started (and
    stops), rather than a cluster of its own.
    """
    with contextlib.ExitStack() as stack:
        if database is None:
            database = stack.enter_context(postgres())
        server = stack.enter_context(
            mlflow_server(database.uri, workdir, proxied=proxied, jobs=jobs)
        )
        if warm:
            warm_up(server.url)
        yield dataclasses.replace(server, pids=(*server.pids, database.pid))
