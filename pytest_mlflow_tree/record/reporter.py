"""The controller's reporter: journal the session, run the uploader, report where it went.

Nothing here may change the outcome of the test run: every hook body is guarded, and a failure
turns into one warning line at the end, with the journal kept for replay.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_mlflow_tree import __version__
from pytest_mlflow_tree.model import compact, links, quiet, redact, sqlitepath, stores
from pytest_mlflow_tree.model.journal import JournalWriter
from pytest_mlflow_tree.model.names import SHARD_KEY
from pytest_mlflow_tree.model.records import FORMAT, Header, module_of
from pytest_mlflow_tree.model.settings_table import MODE, UPLOAD_WAIT
from pytest_mlflow_tree.model.status import Status
from pytest_mlflow_tree.record import ci, session_tags, strict, subtests
from pytest_mlflow_tree.record.context import Context
from pytest_mlflow_tree.record.recorder import Recorder
from pytest_mlflow_tree.record.settings import Settings
from pytest_mlflow_tree.record.upload_progress import UploadProgress

# While waiting for the upload at the end, show progress no more often than this.
# How pytest's header line about the recording starts.
HEADER = "mlflow-tree: recording into "
_POLL = 0.02


def is_ctrl_c(error: BaseException) -> bool:
    """Whether pytest was stopped by Ctrl-C (SIGINT), which makes the session KILLED.

    Python raises KeyboardInterrupt itself on SIGINT. pytest stops a session on a collection
    error or ``-x``, and xdist's controller on ``-x``, with subclasses of their own: that
    session failed, it was not killed. ``pytest.exit()`` raises no KeyboardInterrupt at all.
    """
    return type(error) is KeyboardInterrupt


def _journal_dir(config: pytest.Config, settings: Settings) -> Path:
    if settings.journal_dir is not None:
        return settings.journal_dir
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("mlflow-tree"))
    return config.rootpath / ".pytest_cache" / "d" / "mlflow-tree"


def _origin(config: pytest.Config, source: str) -> str:
    """Where a setting came from, as a user would look for it."""
    if source == "default":
        return "the default"
    if source.startswith("--"):
        return f"from {source}"
    if source.endswith(" (ini)"):
        where = config.inipath.name if config.inipath else "the ini file"
        return f"from {where}'s {source.removesuffix(' (ini)')}"
    return f"from ${source}"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _masker(config: pytest.Config, settings: Settings) -> redact.Masker:
    """Values of secret-looking environment variables and options and the tracking URI's
    credentials never leave the process: not in the journal (nor, through it, the store and
    the report), the step summary or the terminal."""
    return redact.Masker.collect(
        os.environ,
        config.invocation_params.args,
        settings.tracking_uri,
        takes_value=lambda option: isinstance(config.getoption(option, None), (str, list)),
    )


def _header(session_uuid: str, settings: Settings) -> Header:
    return {
        "kind": "journal",
        "format": FORMAT,
        "session_uuid": session_uuid,
        # The journal may be shared or attached to a bug report: no credentials in it. The
        # live uploader gets the real URI through its environment.
        "tracking_uri": redact.url(settings.tracking_uri),
        "experiment": settings.experiment,
        "common_tags": session_tags.common_tags(),
        "plugin_version": __version__,
        **settings.header_options(),
    }


class TreeReporter:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.problem: str | None = None
        self.status: Status | None = None
        # Seconds pytest waited for the upload after the last test.
        self.waited = 0.0
        # Why the journal is not at ``journal_path`` at the end, if it is not.
        self.journal_lost: str | None = None
        # A test deleted the journal (and its directory, with the uploader's status and log).
        self._journal_deleted = False
        self._process: subprocess.Popen[bytes] | None = None
        self._broken = False
        self._finished = False
        self._ctrl_c = False
        session_uuid = uuid.uuid4().hex
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.journal_path = _journal_dir(config, settings) / f"{stamp}-{session_uuid[:8]}.jsonl"
        self._status_path = self.journal_path.with_suffix(".status.json")
        self._log_path = self.journal_path.with_suffix(".upload.log")
        # Files tests log (mlflow_run.log_artifact ...) wait here for the uploader.
        self.files_dir = self.journal_path.with_suffix(".files")
        self.session_uuid = session_uuid
        self._mask = _masker(config, settings)
        self._writer = JournalWriter(self.journal_path, mask=redact.RecordMasker(self._mask))
        self._writer.write(_header(session_uuid, settings))
        self.recorder = Recorder(
            self._writer,
            capture=settings.capture,
            category=subtests.terminal_category(config),
        )
        # pytest's exit code was changed by --mlflow-tree-strict.
        self.failed_session = False
        if settings.upload:
            # Start now: the uploader imports MLflow and prepares the store while pytest collects.
            self._guard(self._start_uploader)

    def context(self) -> Context:
        """What tests need to log into this session (see ``context.py``)."""
        settings = self.settings
        return {
            "tracking_uri": settings.tracking_uri,
            "experiment": settings.experiment,
            "experiment_from_parent": settings.experiment_from_parent,
            "session_uuid": self.session_uuid,
            "files_dir": str(self.files_dir),
            "status_path": str(self._status_path) if settings.upload else None,
            "parent_run_id": settings.parent_run_id,
            "resume_run_id": settings.resume_run_id,
        }

    # -- guarding ------------------------------------------------------------------------------

    def _guard(self, action: Callable[..., None], *args: Any) -> None:
        if self._broken:
            return
        try:
            action(*args)
        except Exception as exc:
            # Stop recording; what is journaled so far stays replayable.
            self._broken = True
            if self.problem is None:
                self.problem = f"recording failed: {type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                self._writer.close()

    # -- uploader process ----------------------------------------------------------------------

    def _start_uploader(self) -> None:
        uri = self.settings.tracking_uri
        if stores.needs_full_mlflow(uri) and not stores.full_mlflow_installed():
            self.problem = stores.missing_store_message(redact.url(uri))
            return
        env = quiet.environment(dict(os.environ))
        env["MLFLOW_TRACKING_URI"] = uri
        # The journal is handed over open: a test may delete its directory.
        with self._log_path.open("wb") as log, self._writer.reader() as journal:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest_mlflow_tree.upload",
                    str(self.journal_path),
                    "--journal-on-stdin",
                    "--follow-pid",
                    str(os.getpid()),
                    "--status",
                    str(self._status_path),
                    "--give-up",
                    str(self.settings.give_up_seconds),
                ],
                stdin=journal,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own session: a Ctrl-C meant for pytest must not kill the upload of what
                # was recorded before it.
                start_new_session=True,
            )

    def _stop_uploader(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            # Ctrl-C again: the user waits for nothing more.
            process.kill()
            process.wait()

    def _wait_for_upload(self) -> None:
        process = self._process
        if process is None:
            return
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        started = time.monotonic()
        deadline = started + self.settings.upload_wait_seconds
        # The header is read, not applied.
        progress = UploadProgress(terminal, self.recorder.records_written, started)
        # Only waits: the uploader decides itself whether the store is gone
        # (--mlflow-tree-give-up-after).
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(_POLL)
            now = time.monotonic()
            if progress.due(now):
                status = Status.read(self._status_path)
                progress.show(status.applied if status else 0, now)
        self.waited = time.monotonic() - started
        timed_out = process.poll() is None
        if timed_out:
            self._stop_uploader()
        self.status = Status.read(self._status_path)
        if timed_out and self.problem is None:
            self.problem = self._timed_out(self.status)
        if self.problem is None:
            code = process.returncode
            if code is not None and code < 0:
                self.problem = f"the uploader process was killed (signal {-code})"
            elif self.status is None:
                self.problem = f"the uploader exited with code {code}"
                if self._journal_deleted:
                    self.problem += " (a test deleted its status and log, next to the journal)"
            elif not self.status.done:
                self.problem = f"the upload failed: {self.status.error}"

    def _timed_out(self, status: Status | None) -> str:
        done, total = (status.applied if status else 0), self.recorder.records_written
        return (
            f"the upload did not finish within {self.settings.upload_wait_seconds:g} s "
            f"({UPLOAD_WAIT.flag}), {done} of {total} records uploaded (a longer "
            f"{UPLOAD_WAIT.flag}, or {MODE.flag}=compact for a suite this large, would let it "
            "finish)"
        )

    def _stop_waiting(self) -> None:
        """Ctrl-C during the wait for the upload: end the wait and the uploader, keep the journal.

        Not left running in the background: after pytest returns, nothing should go on writing
        to the store, and the replay command printed must be safe to run at once, which it is
        not while a second writer uploads the same journal.
        """
        self._stop_uploader()
        self.problem = self.problem or "Ctrl-C during the wait for the upload: uploader stopped"
        self.status = Status.read(self._status_path)

    # -- hooks ---------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._guard(self._open_session)

    def _open_session(self) -> None:
        name = self.settings.run_name or f"pytest {datetime.datetime.now():%Y-%m-%d %H:%M:%S}"
        tags = session_tags.session_tags(self.config, self.settings.tags)
        tags.update(compact.session_tags(self.settings.mode, self.settings.slow_seconds))
        if self.settings.shard_key:
            tags[SHARD_KEY] = self.settings.shard_key
        self.recorder.open_session(name, tags, params={})

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._guard(self.recorder.collect_report, report)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Under xdist the controller collects nothing: the workers' collections tell instead.
        if session.items:
            self.expect(Counter(module_of(item.nodeid) for item in session.items))

    def expect(self, tests_per_module: dict[str, int]) -> None:
        self._guard(self.recorder.expect, dict(tests_per_module))

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self._guard(self.recorder.start_test, nodeid, location)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._guard(self.recorder.test_report, report)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self._ctrl_c = is_ctrl_c(excinfo.value)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED and self._ctrl_c
        # The tests are over: if one deleted the journal's directory, it is back before the
        # uploader's last status is due.
        self._put_back_journal()
        self._guard(self.recorder.close_session, int(exitstatus), interrupted)
        try:
            self._finish()
        except Exception as exc:
            self.problem = self.problem or f"finishing the upload failed: {exc!r}"
        if self.settings.strict and self.problem is not None:
            # CI that must have its report: a failing exit code, unless the tests' own is one.
            strict.fail_session(session)
            self.failed_session = True
        with contextlib.suppress(Exception):
            self._step_summary()

    def _step_summary(self) -> None:
        summary = self.recorder.session_summary
        if summary is None:
            return
        prefix = "mlflow-tree: session run "
        for line, _warning in self.summary_lines():
            if line.startswith(prefix):
                url = line.removeprefix(prefix).split(" ", 1)[0]
                summary += f"\n\n[The session run in MLflow]({url})"
        ci.append_step_summary(os.environ, self._mask.text(summary))

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            self._writer.close()
            self._put_back_journal()
            if self._broken and self._process is not None:
                # The journal has no end and never will: the uploader would wait for one.
                self._stop_uploader()
            try:
                self._wait_for_upload()
            except KeyboardInterrupt:
                self._stop_waiting()
            uploaded = self.settings.upload and self.problem is None
            if uploaded and not self.settings.keep_journal:
                for path in (self.journal_path, self._status_path, self._log_path):
                    path.unlink(missing_ok=True)
                shutil.rmtree(self.files_dir, ignore_errors=True)
        finally:
            self._writer.release()

    def _put_back_journal(self) -> None:
        """Write the journal again where it belongs if a test deleted it (or its directory)."""
        try:
            # Through pytest's cache API first, where the journal is in its cache: a cache
            # directory made again gets its supporting files (.gitignore) too.
            _journal_dir(self.config, self.settings)
            if self._writer.put_back():
                self._journal_deleted = True
        except OSError as exc:
            self.journal_lost = f"a test deleted it and it cannot be written again ({exc})"

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        """Where the session goes, said before the tests run, with where each setting came from."""
        settings = self.settings
        experiment = (
            "the parent run's experiment"
            if settings.experiment_from_parent
            else f"{settings.experiment!r} ({_origin(config, settings.experiment_source)})"
        )
        store = f"{self._shown_uri()} ({_origin(config, settings.tracking_uri_source)})"
        if settings.upload:
            return [f"{HEADER}{store}, experiment {experiment}"]
        return [f"{HEADER}the journal only, for {store}, experiment {experiment}"]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self._mask.weak:
            terminalreporter.write_line(
                "mlflow-tree: secrets too short or too common to mask (under 8 characters, or "
                f"a plain word or number) are recorded as they are: {', '.join(self._mask.weak)}",
                yellow=True,
            )
        for line, markup in self.summary_lines():
            if markup:
                terminalreporter.write_line(line, yellow=True, bold=True)
            else:
                terminalreporter.write_sep("-", line)

    def summary_lines(self) -> list[tuple[str, bool]]:
        """(line, is_warning) pairs for the end of the terminal summary."""
        journal = _shown(self.journal_path)
        lost = self.journal_lost
        if self.problem is not None:
            problem = self._mask.text(redact.url(self.problem))
            what = strict.LABEL if self.failed_session else "WARNING"
            kept = (
                f"The journal is kept; upload it with: pytest-mlflow-tree replay {journal}"
                if lost is None
                else f"The journal {journal} is lost: {lost}"
            )
            return [(f"mlflow-tree: {what}: {problem}. {kept}", True)]
        if not self.settings.upload:
            if lost is not None:
                return [(f"mlflow-tree: WARNING: the journal {journal} is lost: {lost}", True)]
            return [(f"mlflow-tree: journal written to {journal}", False)]
        status = self.status
        if status is None or not status.session_run_id or not status.experiment_id:
            return []
        uri = self.settings.tracking_uri
        url = links.run_url(uri, status.experiment_id, status.session_run_id)
        line = f"mlflow-tree: session run {url}"
        hint = links.ui_hint(uri, self._shown_uri())
        if hint:
            line += f" (open with: {hint})"
        if self.waited >= 1:
            # pytest's own "in N s" below counts this wait too.
            line += f"; uploaded {self.waited:.0f} s after the last test"
        return [(line, False)]

    def _shown_uri(self) -> str:
        uri = self.settings.tracking_uri
        return sqlitepath.short_uri(uri) or redact.url(uri)

    def shutdown(self) -> None:
        """Last chance cleanup when pytest ends without a normal session finish."""
        if not self._finished:
            self._finished = True
            with contextlib.suppress(Exception):
                self._writer.release()
