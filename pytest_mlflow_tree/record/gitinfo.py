"""Git facts about the rootdir, in MLflow's own source tag names."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_mlflow_tree.model import redact
from pytest_mlflow_tree.model.names import GIT_BRANCH, GIT_COMMIT, GIT_DIRTY, GIT_REPO_URL


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
    tags = {GIT_COMMIT: commit}
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        tags[GIT_BRANCH] = branch
    remote = _git(root, "config", "--get", "remote.origin.url")
    if remote:
        tags[GIT_REPO_URL] = redact.url(remote)
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    if status is not None:
        tags[GIT_DIRTY] = "true" if status else "false"
    return tags
