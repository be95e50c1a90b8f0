"""Git facts about the rootdir, in MLflow's own source tag names."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_mlflow_tree.model import redact


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_tags(root: Path) -> dict[str, str]:
    """Commit, branch, repo URL and dirty flag; empty outside a git work tree."""
    commit = _git(root, "rev-parse", "HEAD")
    if not commit:
        return {}
    tags = {"mlflow.source.git.commit": commit}
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        tags["mlflow.source.git.branch"] = branch
    remote = _git(root, "config", "--get", "remote.origin.url")
    if remote:
        tags["mlflow.source.git.repoURL"] = redact.url(remote)
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    if status is not None:
        tags["pytest.git.dirty"] = "true" if status else "false"
    return tags
