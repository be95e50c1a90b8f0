"""The documented options tables agree with the table of settings the plugin is built from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_mlflow_tree.model.settings_table import (
    SETTINGS,
    Setting,
)

ROOT = Path(__file__).resolve().parents[2]
FULL_TABLE = ROOT / "docs" / "options.md"
HEADER = "| command line | environment | ini file | default | what it does |"


@dataclass(frozen=True)
class Row:
    """One documented setting, as the table's cells show it."""

    line: str
    flag: str | None
    flag_value: str | None
    env: str | None
    ini: str | None
    ini_span: str | None
    default: str


def _cells(line: str) -> list[str]:
    # A `|` inside a cell is written `\|`.
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


def _first_span(cell: str) -> str | None:
    spans = re.findall(r"`([^`]*)`", cell)
    return spans[0] if spans else None


def _row(line: str) -> Row:
    command_line, environment, ini_file, default, _ = _cells(line)
    flag_span = _first_span(command_line)
    flag, _, flag_value = (flag_span or "").partition(" ")
    env_span = _first_span(environment)
    ini_span = _first_span(ini_file)
    return Row(
        line=line,
        flag=flag or None,
        flag_value=flag_value or None,
        env=env_span.partition("=")[0] if env_span else None,
        ini=ini_span.partition(" ")[0] if ini_span else None,
        ini_span=ini_span,
        default=default,
    )


def rows(path: Path) -> list[Row]:
    """The rows of the options table in a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert HEADER in lines, f"{path.name} has no options table"
    start = lines.index(HEADER) + 2  # after the header and its --- line
    found = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        found.append(_row(line))
    return found


def setting_of(row: Row) -> Setting:
    """The setting a row documents, found by its flag, else its environment variable."""
    for setting in SETTINGS:
        if row.flag is not None and setting.flag == row.flag:
            return setting
        if row.flag is None and row.env is not None and setting.env == row.env:
            return setting
    raise AssertionError(f"no setting has this row's flag or variable: {row.line}")


def mismatches(row: Row, setting: Setting) -> list[str]:
    """What the row shows differently from the table."""
    value = setting.metavar or "|".join(setting.choices) or None
    switch = setting.type == "switch" and setting.ini is not None
    ini_span = f"{setting.ini} = true" if switch else setting.ini
    shown = {
        "flag": (row.flag, setting.flag),
        "flag value": (row.flag_value, value if setting.flag else None),
        "environment": (row.env, setting.env),
        "ini key": (row.ini_span if switch else row.ini, ini_span),
        "default": (row.default, setting.shown_default),
    }
    return [
        f"{what}: documented {documented!r}, table {expected!r}"
        for what, (documented, expected) in shown.items()
        if documented != expected
    ]


@pytest.mark.parametrize("path", [FULL_TABLE, ROOT / "README.md"], ids=lambda path: path.name)
def test_every_documented_row_matches_its_setting(path: Path) -> None:
    for row in rows(path):
        setting = setting_of(row)
        assert mismatches(row, setting) == [], f"{path.name}, {setting.name}: {row.line}"


def test_the_full_table_documents_every_setting_once() -> None:
    documented = [setting_of(row).name for row in rows(FULL_TABLE)]
    assert sorted(documented) == sorted(setting.name for setting in SETTINGS)


def test_flags_ini_keys_and_variables_are_unique_and_described() -> None:
    for attribute in ("name", "flag", "ini", "env"):
        values = [getattr(s, attribute) for s in SETTINGS if getattr(s, attribute) is not None]
        assert len(values) == len(set(values)), attribute
    for setting in SETTINGS:
        assert setting.flag or setting.env, setting.name
        assert setting.help, setting.name
        assert (setting.ini is None) == (setting.ini_help is None), setting.name
        if setting.flag is not None:
            assert setting.dest.removeprefix("no_").startswith("mlflow_tree"), setting.name
