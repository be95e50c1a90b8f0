"""Which names and values are secrets, and how text, command lines and records are masked."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from pytest_mlflow_tree.model import journal
from pytest_mlflow_tree.model.records import Record
from pytest_mlflow_tree.model.redact import (
    MASK,
    Masker,
    RecordMasker,
    command_line,
    is_secret_name,
    is_weak,
    url,
)

SECRET = "s3cr3t-Value-42"
OTHER = "an0ther-Secret-7"
STRONG = "canary-7Hx2kQ9w"


def collect(environ: dict[str, str], args: tuple[str, ...] = (), uri: str = "") -> Masker:
    return Masker.collect(environ, args, uri)


@pytest.mark.parametrize(
    "name",
    [
        "PASSWORD",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
        "api_key",
        "API-KEY",
        "apikey",
        "AWS_SECRET_ACCESS_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "AUTH_HEADER",
        "HTTP_AUTHORIZATION",
        "AUTH_TYPE",
        "--auth",
        "SSH_KEY",
        "key",
        "my.key.file",
        "PRIVATE_KEY",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "GIT_AUTHOR_NAME",
        "AUTHORS",
        "author",
        "KEYBOARD",
        "MONKEY",
        "HOME",
        "PYTEST_MLFLOW_TREE_SHARD_KEY",
        "--mlflow-tree-shard-key",
    ],
)
def test_names_that_are_no_secret(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("value", "weak"),
    [
        ("short", True),
        ("1234567", True),
        ("password", True),
        ("Password", True),
        ("PASSWORDS", True),
        ("12345678901234", True),
        ("abcdefghijklmnop", True),
        ("pytest", True),
        ("session", True),
        ("mlflow", True),
        ("postgres", True),
        ("483920", True),
        ("abcdefghijklmnopq", False),
        ("pass1234", False),
        ("Abc12345xyz", False),
        (SECRET, False),
    ],
)
def test_weak_values(value: str, weak: bool) -> None:
    assert is_weak(value) is weak


@pytest.mark.parametrize(
    "value", [SECRET, "hunter2hunter2", "s3cr3t-pw", "12345678901234567", "xoxb-1234-abcd"]
)
def test_a_strong_value_is_masked_inside_any_text(value: str) -> None:
    assert collect({"DB_PASSWORD": value}).text(f"x{value}y") == f"x{MASK}y"


def test_url_credentials_are_masked_wherever_they_are() -> None:
    text = "push to https://user:tok@host/x and postgresql://me:pw@db:5432/mlflow"
    assert url(text) == "push to https://***@host/x and postgresql://***@db:5432/mlflow"
    assert url("mail me@host.org, see https://host/a@b") == "mail me@host.org, see https://host/a@b"


@pytest.mark.parametrize(
    ("args", "masked"),
    [
        (["--token", SECRET, "tests"], ["--token", MASK, "tests"]),
        (["--token=" + SECRET], ["--token=" + MASK]),
        (["API_KEY=" + SECRET], ["API_KEY=" + MASK]),
        (["-o", "password=" + SECRET], ["-o", "password=" + MASK]),
        (["--token"], ["--token"]),
        (["-k", "test_token"], ["-k", "test_token"]),
        (["--uri", "https://u:p@h/"], ["--uri", "https://***@h/"]),
    ],
)
def test_command_lines(args: list[str], masked: list[str]) -> None:
    assert command_line(args) == masked


def test_the_argument_after_a_flag_that_takes_no_value_is_kept() -> None:
    args = ["--skip-auth", "tests/test_login.py"]
    assert command_line(args, takes_value=lambda option: False) == args
    assert command_line(args) == ["--skip-auth", MASK]


def test_collect_takes_strong_values_and_names_weak_ones_only() -> None:
    masker = Masker.collect(
        {"API_TOKEN": SECRET, "DB_PASSWORD": "hunter2", "FEATURE_TOKEN": "true", "HOME": OTHER},
        ["--token", OTHER + "x", "--password=pw"],
    )
    assert set(masker.values) == {SECRET, OTHER + "x"}
    assert masker.weak == ("DB_PASSWORD", "--password")


def test_collect_takes_the_tracking_uris_credentials_as_written_and_decoded() -> None:
    masker = Masker.collect({}, [], "https://alice:p%40ssw0rd-long@host/")
    assert set(masker.values) == {"alice:p%40ssw0rd-long", "p%40ssw0rd-long", "p@ssw0rd-long"}


def test_a_weak_uri_password_is_named_but_a_short_user_name_is_not() -> None:
    masker = Masker.collect({}, [], "https://me:pw@host/", "https://someone@host/")
    assert (masker.values, masker.weak) == ((), ("the tracking URI's password",))


def test_a_secret_holding_another_is_masked_whole() -> None:
    masker = Masker.collect({"A_TOKEN": "abcdefgh12", "B_TOKEN": "abcdefgh1234"}, [])
    assert masker.values == ("abcdefgh1234", "abcdefgh12")
    assert masker.text("x abcdefgh1234 y abcdefgh12") == f"x {MASK} y {MASK}"


def test_values_are_masked_inside_lists_and_dicts_and_numbers_are_kept() -> None:
    masker = Masker((SECRET,))
    value = {"a": [SECRET, 1, 2.5, None, True], "b": (f"x{SECRET}x",), SECRET: "key kept"}
    assert masker.value(value) == {
        "a": [MASK, 1, 2.5, None, True],
        "b": [f"x{MASK}x"],
        SECRET: "key kept",
    }
    assert masker.value(ValueError(SECRET)) == MASK


def masked(mask: RecordMasker, record: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], mask(cast(Record, record)))


def test_records_are_masked_in_their_values_only() -> None:
    mask = RecordMasker(Masker((SECRET,)))
    record = {
        "kind": "run",
        "key": f"t.py::test[{SECRET}]",
        "parent": "t.py",
        "name": f"test[{SECRET}]",
        "start": 1,
        "tags": {"pytest.nodeid": f"t.py::test[{SECRET}]", "note": SECRET},
        "params": {SECRET: SECRET},
        "metrics": {"loss": 1.0},
    }
    out = masked(mask, record)
    assert out["key"] == out["tags"]["pytest.nodeid"] == f"t.py::test[{MASK}]"
    assert out["name"] == f"test[{MASK}]"
    assert out["tags"]["note"] == MASK
    assert out["params"] == {SECRET: MASK}
    assert (out["parent"], out["start"], out["metrics"]) == ("t.py", 1, {"loss": 1.0})


@pytest.mark.parametrize("kind", ["journal", "end"])
def test_the_header_and_the_end_are_the_plugins_own(kind: str) -> None:
    record = {"kind": kind, "tracking_uri": SECRET}
    assert masked(RecordMasker(Masker((SECRET,))), record) == record


def test_keys_that_differ_only_in_secrets_stay_apart_and_parents_are_found() -> None:
    mask = RecordMasker(Masker((SECRET, OTHER)))
    module = f"tests/{SECRET}/test_a.py"
    first = masked(mask, {"kind": "open", "key": module, "parent": "<session>"})
    second = masked(mask, {"kind": "open", "key": f"tests/{OTHER}/test_a.py", "parent": None})
    child = masked(mask, {"kind": "run", "key": f"{module}::t", "parent": module})
    assert first["key"] == f"tests/{MASK}/test_a.py"
    assert second["key"] == f"tests/{MASK}/test_a.py#2"
    assert child["parent"] == first["key"]
    assert second["parent"] is None
    assert mask.key(module) == first["key"]
    assert mask.key("plain") == "plain"


def test_a_weak_secret_is_named_once_never_shown_and_switches_are_not_secrets() -> None:
    found = collect(
        {
            "POSTGRES_PASSWORD": "pytest",
            "AUTH_TYPE": "session",
            "USE_AUTH": "true",
            "API_TOKEN": STRONG,
            "HOME": "/home/user",
        },
        args=("--password", "mlflow", "--api-key=" + STRONG + "2", "-k", "auth"),
        uri="postgresql://user:short@db/mlflow",
    )
    assert found.weak == (
        "POSTGRES_PASSWORD",
        "AUTH_TYPE",
        "--password",
        "the tracking URI's password",
    )
    assert found.values == (STRONG + "2", STRONG, "user:short")
    assert found.text("user:short mlflow pytest") == "*** mlflow pytest"


def test_secret_options_are_read_in_every_spelling_and_masked_in_the_command() -> None:
    args = (
        "pytest",
        "--token",
        "tok-1234abcd",
        "--api-key=key-1234abcd",
        "-o",
        "db_password=pw-1234abcd",
        "tests/test_auth.py::test_login[a=b]",
        "--mlflow-tree-shard-key=nightly-42x",
    )
    assert command_line(args) == [
        "pytest",
        "--token",
        "***",
        "--api-key=***",
        "-o",
        "db_password=***",
        "tests/test_auth.py::test_login[a=b]",
        "--mlflow-tree-shard-key=nightly-42x",
    ]
    assert collect({}, args).values == ("key-1234abcd", "tok-1234abcd", "pw-1234abcd")


def test_the_argument_after_a_secret_looking_flag_is_no_secret() -> None:
    args = ("--skip-auth", "tests/integration", "--token", "tok-1234abcd")
    found = Masker.collect({}, args, takes_value=lambda option: option == "--token")
    assert found.values == ("tok-1234abcd",)
    assert found.text("tests/integration/test_a.py") == "tests/integration/test_a.py"


def test_url_credentials_are_masked_in_any_text() -> None:
    text = "connecting to postgresql://app:Sup3r@db:5432/x and https://ghp_abc@github.com/a/b"
    assert collect({}).text(text) == (
        "connecting to postgresql://***@db:5432/x and https://***@github.com/a/b"
    )


def test_records_keep_their_keys_numbers_and_own_fields() -> None:
    # A strong secret that is also a key name, the digits of a float and part of the store.
    secret = "12345678901234568"
    mask = RecordMasker(collect({"X_TOKEN": secret, "Y_TOKEN": "session_uuid"}))
    header = {
        "kind": "journal",
        "format": 1,
        "session_uuid": "session_uuid",
        "tracking_uri": f"sqlite:///{secret}/mlflow.db",
        "experiment": "e",
        "common_tags": {"mlflow.user": secret},
        "plugin_version": "1",
    }
    assert masked(mask, header) == header
    run = {
        "kind": "run",
        "level": "test",
        "key": f"t.py::test[{secret}]",
        "parent": "t.py",
        "name": f"test[{secret}]",
        "start": 12345678901234568,
        "end": 12345678901234569,
        "status": "FINISHED",
        "tags": {"session_uuid": "is session_uuid", "pytest.outcome": "passed"},
        "params": {"n": secret},
        "metrics": {"session_uuid": 0.12345678901234568},
        "artifacts": {"session_uuid.txt": f"{secret} [1, 2]"},
        "metric_steps": [["m", 0.12345678901234568, 12345678901234568, 0]],
    }
    result = masked(mask, run)
    assert result["key"] == "t.py::test[***]"
    assert result["name"] == "test[***]"
    assert result["tags"] == {"session_uuid": "is ***", "pytest.outcome": "passed"}
    assert result["params"] == {"n": "***"}
    assert result["artifacts"] == {"session_uuid.txt": "*** [1, 2]"}
    own = ("kind", "level", "parent", "start", "end", "status", "metrics", "metric_steps")
    assert {k: result[k] for k in own} == {k: run[k] for k in own}
    # The line written is JSON whatever the secret.
    line = journal.encode(cast(Record, result))
    assert dict(journal.decode(line))["metrics"] == run["metrics"]


def test_ids_that_differ_only_in_secrets_stay_different_and_parents_are_found() -> None:
    mask = RecordMasker(collect({"A_TOKEN": "first-secret-1", "B_TOKEN": "second-secret-2"}))
    module = {"kind": "open", "level": "module", "key": "m/first-secret-1.py", "parent": None}
    assert masked(mask, module)["key"] == "m/***.py"
    first, second = (
        "m/first-secret-1.py::t[first-secret-1]",
        "m/first-secret-1.py::t[second-secret-2]",
    )
    assert [mask.key(first), mask.key(second)] == ["m/***.py::t[***]", "m/***.py::t[***]#2"]
    # The same id, masked again (a child's parent), is the same key.
    assert mask.key(first) == "m/***.py::t[***]"
    assert mask.key("m/first-secret-1.py") == "m/***.py"


@pytest.mark.parametrize(
    "secret",
    [SECRET, 'quote"back\\slash-1', "naïve-sécret-42", "tab\tsecret-99", "\udcffsurrogate-1"],
)
def test_the_journal_writes_what_masking_every_record_would(tmp_path: Path, secret: str) -> None:
    """The journal skips masking a record whose line holds no secret: never one that does,
    wherever the secret is and however JSON escapes it."""
    records: list[dict[str, Any]] = [
        {"kind": "open", "key": "t.py", "parent": "<session>", "name": "t.py"},
        {"kind": "run", "key": f"t.py::x[{secret}]", "parent": "t.py", "tags": {}},
        {"kind": "run", "key": "t.py::y", "parent": "t.py", "params": {"p": f"a{secret}b"}},
        {"kind": "run", "key": "t.py::z", "parent": "t.py", "artifacts": {"f.txt": secret}},
        {"kind": "run", "key": "t.py::u", "parent": "t.py", "tags": {"u": "https://u:p@h/x"}},
        {"kind": "run", "key": "t.py::plain", "parent": "t.py", "tags": {"a": "b"}},
    ]
    path = tmp_path / "journal.jsonl"
    writer = journal.JournalWriter(path, mask=RecordMasker(Masker((secret,))))
    for record in records:
        writer.write(cast(Record, record))
    writer.close()
    everything = RecordMasker(Masker((secret,)))
    expected = [journal.encode(everything(cast(Record, record))) for record in records]
    assert path.read_text(encoding="utf-8").splitlines() == expected
    assert "p@h" not in path.read_text(encoding="utf-8")
