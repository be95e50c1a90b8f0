"""Where the tree goes and what it is called: command line > environment > ini file > default.

Resolution is checked on real pytest configurations (``pytester.parseconfig``): no session
runs. A few sessions check that the resolved values reach the store, and how pytest reports
a bad value.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
from conftest import Store

from pytest_mlflow_tree.record import ci
from pytest_mlflow_tree.record.settings import Settings, resolve

SUITE = """
    def test_ok():
        pass

    def test_also_ok():
        pass
"""
SOURCES = ("cli", "env", "ini")
# Every variable a setting reads: the tests set what they need and nothing else leaks in.
VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "PYTEST_MLFLOW_TREE_PARENT_RUN_ID",
    "PYTEST_MLFLOW_TREE_SHARD_KEY",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*VARIABLES, *ci.VARIABLES):
        monkeypatch.delenv(name, raising=False)


def settings(pytester: pytest.Pytester, *args: str, ini: str = "") -> Settings:
    """The settings of a pytest started with ``args`` and this ini file in its rootdir."""
    pytester.makeini("[pytest]\n" + ini)
    return resolve(pytester.parseconfig(str(pytester.path), *args))


def seconds(resolved: Settings) -> tuple[float, float, float]:
    return resolved.upload_wait_seconds, resolved.give_up_seconds, resolved.slow_seconds


def copy_store(migrated_db: Path, path: Path) -> Store:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(migrated_db, path)
    return Store(uri=f"sqlite:///{path}", path=path)


def experiments(store: Store) -> list[str]:
    return [e.name for e in store.client().search_experiments() if e.name != "Default"]


@pytest.mark.parametrize("winner", [*SOURCES, "default"])
def test_tracking_uri_and_experiment_come_from_the_highest_source_that_sets_them(
    winner: str, pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uris = {source: f"sqlite:///{tmp_path / source / 'mlflow.db'}" for source in SOURCES}
    # Every source below the winner sets a value too, and must lose.
    setting = SOURCES[SOURCES.index(winner) :] if winner in SOURCES else ()
    args: list[str] = []
    ini = ""
    if "cli" in setting:
        args += [f"--mlflow-tree-tracking-uri={uris['cli']}", "--mlflow-tree-experiment=cli"]
    if "env" in setting:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uris["env"])
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "env")
    if "ini" in setting:
        ini = f"mlflow_tree_tracking_uri = {uris['ini']}\nmlflow_tree_experiment = ini\n"
    # Run from elsewhere: the default store is relative to the current directory, not rootdir.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    resolved = settings(pytester, *args, ini=ini)

    sources = {
        "cli": ("--mlflow-tree-tracking-uri", "--mlflow-tree-experiment"),
        "env": ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"),
        "ini": ("mlflow_tree_tracking_uri (ini)", "mlflow_tree_experiment (ini)"),
        "default": ("default", "default"),
    }
    if winner == "default":
        assert resolved.tracking_uri == f"sqlite:///{cwd / 'mlflow.db'}"
        assert resolved.experiment == pytester.path.name  # the rootdir's name
    else:
        assert resolved.tracking_uri == uris[winner]
        assert resolved.experiment == winner
    assert (resolved.tracking_uri_source, resolved.experiment_source) == sources[winner]
    assert not resolved.enabled


def test_an_empty_variable_counts_as_not_set(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "")
    resolved = settings(pytester, ini="mlflow_tree_tracking_uri = http://ini:5000\n")
    assert resolved.tracking_uri == "http://ini:5000"
    assert resolved.tracking_uri_source == "mlflow_tree_tracking_uri (ini)"
    assert resolved.experiment_source == "default"


def test_a_relative_sqlite_path_is_pinned_to_the_current_directory_and_others_are_kept(
    pytester: pytest.Pytester,
) -> None:
    cwd = Path.cwd()
    given = {
        "sqlite:///runs/mlflow.db?timeout=5": f"sqlite:///{cwd / 'runs' / 'mlflow.db'}?timeout=5",
        "sqlite:////abs/mlflow.db": "sqlite:////abs/mlflow.db",
        "sqlite:///:memory:": "sqlite:///:memory:",
        "postgresql://user@host/db": "postgresql://user@host/db",
    }
    for uri, expected in given.items():
        assert settings(pytester, f"--mlflow-tree-tracking-uri={uri}").tracking_uri == expected


def test_the_defaults(pytester: pytest.Pytester) -> None:
    resolved = settings(pytester)
    assert resolved == Settings(
        enabled=False,
        tracking_uri=f"sqlite:///{Path.cwd() / 'mlflow.db'}",
        tracking_uri_source="default",
        experiment=pytester.path.name,
        experiment_source="default",
        run_name=None,
    )
    assert resolved.upload_wait_seconds == 300
    assert resolved.give_up_seconds == 4
    assert resolved.slow_seconds == 1
    assert resolved.mode == "tree"
    assert resolved.capture
    assert resolved.upload
    assert not resolved.keep_journal
    assert not resolved.strict
    assert resolved.header_options() == {}


def test_the_ini_file_enables_recording_and_tags_merge_per_key(pytester: pytest.Pytester) -> None:
    ini = """
mlflow_tree = true
mlflow_tree_run_name = from-ini
mlflow_tree_tags =
    team=from-ini
    owner=ml-platform
"""
    resolved = settings(
        pytester,
        "--mlflow-tree-tag",
        "team=vision",
        "--mlflow-tree-tag=query=a=b",
        "--mlflow-tree-run-name",
        "nightly check",
        ini=ini,
    )
    assert resolved.enabled
    assert resolved.run_name == "nightly check"
    assert resolved.tags == {"team": "vision", "owner": "ml-platform", "query": "a=b"}
    assert settings(pytester, ini=ini).run_name == "from-ini"


def test_the_command_line_beats_the_ini_file(pytester: pytest.Pytester) -> None:
    ini = """
mlflow_tree_journal_dir = from-ini
mlflow_tree_upload_wait = 10
mlflow_tree_give_up_after = 11
mlflow_tree_compact_slow = 12
mlflow_tree_mode = Compact
mlflow_tree_capture = no
"""
    from_ini = settings(pytester, ini=ini)
    assert from_ini.journal_dir == pytester.path / "from-ini"  # relative to the rootdir
    assert seconds(from_ini) == (10, 11, 12)
    assert from_ini.mode == "compact"
    assert not from_ini.capture

    journal_dir = pytester.path.parent / "elsewhere"
    from_cli = settings(
        pytester,
        f"--mlflow-tree-journal-dir={journal_dir}",
        "--mlflow-tree-upload-wait=0",
        "--mlflow-tree-give-up-after=1.5",
        "--mlflow-tree-compact-slow=0.25",
        "--mlflow-tree-mode=tree",
        "--mlflow-tree-capture=all",
        ini=ini,
    )
    assert from_cli.journal_dir == journal_dir
    assert seconds(from_cli) == (0, 1.5, 0.25)
    assert from_cli.mode == "tree"
    assert from_cli.capture


def test_switches_come_from_the_command_line_or_the_ini_file(pytester: pytest.Pytester) -> None:
    switches = ("strict", "journal_only", "keep_journal")
    from_ini = settings(pytester, ini="".join(f"mlflow_tree_{s} = true\n" for s in switches))
    assert from_ini.strict
    assert not from_ini.upload
    assert from_ini.keep_journal
    flags = ("--mlflow-tree-strict", "--mlflow-tree-journal-only", "--mlflow-tree-keep-journal")
    off = "".join(f"mlflow_tree_{s} = false\n" for s in switches)
    resolved = settings(pytester, *flags, ini=off)
    assert resolved.strict
    assert not resolved.upload
    assert resolved.keep_journal
    assert settings(pytester, ini=off) == settings(pytester)


def test_numbers_in_the_ini_file_are_numbers_and_zero_is_a_value(
    pytester: pytest.Pytester,
) -> None:
    ini = "mlflow_tree_upload_wait = 0\nmlflow_tree_give_up_after = 2.5\n"
    assert seconds(settings(pytester, ini=ini)) == (0, 2.5, 1)
    config = pytester.parseconfig(str(pytester.path))
    # pytest reads numbers itself where it can (8.4 and later); before, the plugin does.
    expected: object = 0.0 if pytest.version_tuple >= (8, 4) else "0"
    assert config.getini("mlflow_tree_upload_wait") == expected


@pytest.mark.skipif(pytest.version_tuple < (9,), reason="pytest 9 reads [tool.pytest] as TOML")
def test_toml_numbers_and_booleans_in_tool_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.pytest]
        mlflow_tree_upload_wait = 600
        mlflow_tree_give_up_after = 2.5
        mlflow_tree_compact_slow = 0
        mlflow_tree_keep_journal = true
        mlflow_tree_journal_only = true
        """
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolved = resolve(pytester.parseconfig(str(pytester.path)))
    assert seconds(resolved) == (600, 2.5, 0)
    assert resolved.keep_journal
    assert not resolved.upload


def test_parent_resume_and_shard_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_MLFLOW_TREE_PARENT_RUN_ID", " from-env ")
    monkeypatch.setenv("PYTEST_MLFLOW_TREE_SHARD_KEY", "env-key")
    ini = "mlflow_tree_shard_key = ini-key\n"
    from_env = settings(pytester, "--mlflow-tree-resume= session-id", ini=ini)
    assert from_env.parent_run_id == "from-env"
    # A session attached to a run goes to that run's experiment unless one is named.
    assert from_env.experiment_from_parent
    assert from_env.resume_run_id == "session-id"
    assert from_env.header_options() == {
        "parent_run_id": "from-env",
        "experiment_from_parent": True,
        "resume_run_id": "session-id",
    }
    assert from_env.shard_key == "env-key"

    from_cli = settings(
        pytester,
        "--mlflow-tree-parent=from-cli",
        "--mlflow-tree-experiment=named",
        "--mlflow-tree-shard-key=cli-key",
        ini=ini,
    )
    assert from_cli.parent_run_id == "from-cli"
    assert not from_cli.experiment_from_parent
    assert from_cli.shard_key == "cli-key"

    monkeypatch.delenv("PYTEST_MLFLOW_TREE_SHARD_KEY")
    assert settings(pytester, ini=ini).shard_key == "ini-key"


def test_shard_key_ci_is_the_ci_pipelines_id(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    assert settings(pytester, "--mlflow-tree-shard-key=ci").shard_key == "github-actions-4242"


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (("--mlflow-tree-tag", "novalue"), "", "--mlflow-tree-tag: tag 'novalue' is not KEY=VALUE"),
        (
            ("--mlflow-tree-upload-wait", "abc"),
            "",
            "--mlflow-tree-upload-wait: 'abc' is not a number of seconds",
        ),
        (
            ("--mlflow-tree-compact-slow", "-1"),
            "",
            "--mlflow-tree-compact-slow: '-1' is not a number of seconds",
        ),
        (
            ("--mlflow-tree-give-up-after", "nan"),
            "",
            "--mlflow-tree-give-up-after: 'nan' is not a number of sec",
        ),
        ((), "mlflow_tree_tags = =x", "mlflow_tree_tags (ini): tag '=x' is not KEY=VALUE"),
        (
            (),
            "mlflow_tree_give_up_after = -2",
            "mlflow_tree_give_up_after (ini): '-2' is not a number of sec",
        ),
        ((), "mlflow_tree_capture = some", "mlflow_tree_capture (ini): 'some' is not one of all"),
        ((), "mlflow_tree_mode = big", "mlflow_tree_mode (ini): mode 'big' is not one of tree"),
        (("--mlflow-tree-mode=big",), "", "--mlflow-tree-mode: mode 'big' is not one of tree"),
        (("--mlflow-tree-shard-key=ci",), "", "--mlflow-tree-shard-key: 'ci' needs a CI pipel"),
        (("--mlflow-tree-capture=some",), "", "--mlflow-tree-capture: invalid choice: 'some'"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_its_source(
    args: tuple[str, ...], ini: str, message: str, pytester: pytest.Pytester
) -> None:
    with pytest.raises(pytest.UsageError) as raised:
        settings(pytester, *args, ini=ini + "\n")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("ini", "expected"),
    [
        ("mlflow_tree_upload_wait = abc", "not a number of seconds >= 0"),
        ("mlflow_tree_give_up_after = nan", "not a number of seconds >= 0"),
        ("mlflow_tree_compact_slow = -1", "not a number of seconds >= 0"),
        ("mlflow_tree_keep_journal = maybe", "not true or false"),
        ("mlflow_tree = 2", "not true or false"),
    ],
)
def test_a_bad_typed_ini_value_is_a_usage_error_naming_its_key(
    ini: str, expected: str, pytester: pytest.Pytester
) -> None:
    # pytest reads the value itself where it can, and its own message names no key.
    key = ini.partition(" ")[0]
    with pytest.raises(pytest.UsageError) as raised:
        settings(pytester, ini=ini + "\n")
    message = str(raised.value)
    assert message.startswith(f"{key} (ini): "), message
    assert expected in message


def test_a_bad_variable_is_a_usage_error_naming_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_MLFLOW_TREE_SHARD_KEY", "ci")
    with pytest.raises(pytest.UsageError, match=r"^PYTEST_MLFLOW_TREE_SHARD_KEY: 'ci' needs"):
        settings(pytester)


def test_the_resolved_store_experiment_run_name_and_tags_are_the_ones_recorded_into(
    pytester: pytest.Pytester,
    migrated_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makepyfile(test_two=SUITE)
    stores = {
        source: copy_store(migrated_db, tmp_path / source / "mlflow.db") for source in SOURCES
    }
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stores["env"].uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "env")
    pytester.makeini(
        f"""
        [pytest]
        mlflow_tree = true
        mlflow_tree_tracking_uri = {stores["ini"].uri}
        mlflow_tree_experiment = ini
        mlflow_tree_run_name = from-ini
        mlflow_tree_tags =
            team=from-ini
            owner=ml-platform
        """
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    # An experiment that exists is reused, with what it already holds.
    client = stores["cli"].client()
    existing = client.create_experiment("cli")
    earlier = client.create_run(existing, run_name="earlier work").info.run_id

    # No --mlflow-tree: the ini file turns recording on.
    result = pytester.runpytest(
        str(pytester.path),
        f"--mlflow-tree-tracking-uri={stores['cli'].uri}",
        "--mlflow-tree-experiment=cli",
        "--mlflow-tree-tag",
        "team=vision",
        "--mlflow-tree-tag=query=a=b",
        "--mlflow-tree-run-name",
        "nightly check",
    )
    result.assert_outcomes(passed=2)
    assert "WARNING" not in result.stdout.str()

    tree = stores["cli"].tree("cli")
    assert sorted(tree.tests) == ["test_two.py::test_also_ok", "test_two.py::test_ok"]
    session = tree.session
    assert session.info.status == "FINISHED"
    assert session.info.experiment_id == existing
    assert earlier in {run.info.run_id for run in tree.runs}
    assert len(tree.runs) == 1 + 1 + 1 + 2
    assert session.info.run_name == "nightly check"
    assert {key: session.data.tags.get(key) for key in ("team", "owner", "query")} == {
        "team": "vision",
        "owner": "ml-platform",
        "query": "a=b",
    }
    # Extra tags are the session's, not every run's.
    for run in tree.runs:
        if run is not session:
            assert "owner" not in run.data.tags
    for source in ("env", "ini"):
        assert experiments(stores[source]) == [], f"{source} lost to cli but got runs"
    for directory in (cwd, pytester.path):
        assert not (directory / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("args", "ini", "shown"),
    [
        (("--mlflow-tree-give-up-after", "nan"), "", "*--mlflow-tree-give-up-after*nan*seconds*"),
        ((), "mlflow_tree_upload_wait = soon", "*mlflow_tree_upload_wait (ini)*seconds*"),
        ((), "mlflow_tree_strict = maybe", "*mlflow_tree_strict (ini)*true or false*"),
    ],
    ids=["option", "ini number", "ini switch"],
)
def test_pytest_reports_a_bad_value_as_one_usage_error_and_records_nothing(
    args: tuple[str, ...], ini: str, shown: str, pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(test_two=SUITE)
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("--mlflow-tree", f"--mlflow-tree-tracking-uri={store.uri}", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr.str()
    result.stderr.fnmatch_lines([shown])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / ".pytest_cache" / "d" / "mlflow-tree").exists()
    assert experiments(store) == []


def test_without_the_flag_nothing_is_recorded(
    pytester: pytest.Pytester, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_two=SUITE)
    pytester.makeini("[pytest]")  # the rootdir
    # MLflow is configured for this shell, but the plugin is not turned on.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = pytester.runpytest(str(pytester.path))
    result.assert_outcomes(passed=2)
    assert "mlflow-tree:" not in result.stdout.str()
    assert (pytester.path / ".pytest_cache").is_dir()  # pytest's own cache, for comparison
    assert not (pytester.path / ".pytest_cache" / "d" / "mlflow-tree").exists()
    for directory in (cwd, pytester.path):
        assert not (directory / "mlflow.db").exists()
        assert not (directory / "mlruns").exists()
    # Last: MLflow 2.x's own client makes ./mlruns in the current directory.
    assert experiments(store) == []
