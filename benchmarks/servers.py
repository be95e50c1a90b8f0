"""Throwaway PostgreSQL and MLflow tracking servers on 127.0.0.1, for benchmarks and tests.

``tracking_server()`` starts a private PostgreSQL cluster in a temporary directory, creates a
database, starts ``mlflow server`` on it with default settings, waits for ``/health`` and yields
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
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from measure import bench_env, free_port

_DB_USER = "bench"
_DB_NAME = "mlflow"


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
    base = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    if owner:
        os.chown(base, account.pw_uid, account.pw_gid)
    data, sockets, log = base / "data", base / "sockets", base / "postgres.log"
    port = free_port()
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
        # Listen on 127.0.0.1 only, with the Unix socket in our directory (the system's
        # /var/run/postgresql may not exist or belong to another cluster).
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sockets}"
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
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                _DB_USER,
                _DB_NAME,
            ],
            owner,
            timeout=60,
        )
        # The driver is named: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3.
        uri = f"postgresql+psycopg2://{_DB_USER}@127.0.0.1:{port}/{_DB_NAME}"
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
    backend_store_uri: str, workdir: Path, startup_timeout: float = 180.0
) -> Iterator[TrackingServer]:
    """``mlflow server`` with default settings on a free port of 127.0.0.1."""
    # The server runs in this interpreter's environment: check its driver here, not in a log.
    if backend_store_uri.startswith("postgresql") and importlib.util.find_spec("psycopg2") is None:
        raise ServerError("the PostgreSQL backend needs psycopg2: pip install psycopg2-binary")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "mlflow-server.log"
    artifacts = workdir / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--default-artifact-root",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=bench_env(),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Bounded wait: the first start migrates the database, which takes a while.
        deadline = time.monotonic() + startup_timeout
        while not _healthy(url):
            if process.poll() is not None:
                raise ServerError(f"mlflow server exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise ServerError(f"mlflow server not healthy after {startup_timeout:g} s")
            time.sleep(0.5)
        yield TrackingServer(url, backend_store_uri, log, pids=(process.pid,))
    finally:
        _stop(process)


@contextlib.contextmanager
def tracking_server(workdir: Path) -> Iterator[TrackingServer]:
    """PostgreSQL plus ``mlflow server`` on it, both on 127.0.0.1, both gone on exit."""
    with postgres() as database, mlflow_server(database.uri, workdir) as server:
        yield dataclasses.replace(server, pids=(*server.pids, database.pid))
