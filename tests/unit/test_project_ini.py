"""Which ini file the commands read, found as pytest finds its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mlflow_tree.read import project_ini

URI = "mlflow_tree_tracking_uri"


def test_the_first_directory_up_with_an_ini_file_wins(tmp_path: Path) -> None:
    (tmp_path / "tox.ini").write_text(f"[pytest]\n{URI} = sqlite:///outer.db\n")
    inner = tmp_path / "pkg" / "sub"
    inner.mkdir(parents=True)
    # A pyproject.toml without a pytest section does not count: pytest looks further up.
    (tmp_path / "pkg" / "pyproject.toml").write_text("[tool.black]\nline-length = 100\n")

    found = project_ini.find(inner)

    assert found.path == tmp_path / "tox.ini"
    assert found.get(URI) == "sqlite:///outer.db"


def test_pytest_ini_counts_even_without_a_section_and_comes_first(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("")
    (tmp_path / "pyproject.toml").write_text(f'[tool.pytest.ini_options]\n{URI} = "x"\n')

    found = project_ini.find(tmp_path)

    assert found.path == tmp_path / "pytest.ini"
    assert found.get(URI) is None


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pyproject.toml", f'[tool.pytest.ini_options]\n{URI} = "sqlite:///é.db"\n'),
        # pytest 9's native table.
        ("pyproject.toml", f'[tool.pytest]\n{URI} = "sqlite:///é.db"\n'),
        ("setup.cfg", f"[tool:pytest]\n{URI} = sqlite:///é.db\n"),
        (".pytest.ini", f"[pytest]\n{URI} = sqlite:///é.db\n"),
    ],
)
def test_every_kind_of_ini_file(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")

    assert project_ini.find(tmp_path).get(URI) == "sqlite:///é.db"


def test_a_broken_file_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options\n")
    (tmp_path / "setup.cfg").write_text(f"[tool:pytest]\n{URI} = sqlite:///ok.db\n")

    assert project_ini.find(tmp_path).get(URI) == "sqlite:///ok.db"


def test_no_ini_file_gives_no_values(tmp_path: Path) -> None:
    found = project_ini.find(tmp_path)

    assert found.path is None or not found.path.is_relative_to(tmp_path)
