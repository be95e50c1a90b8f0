"""Which CI job ran the session: provider, pipeline and job, URL, branch, commit, pull request.

Read from each provider's documented environment variables: GitHub Actions ("Variables
reference"), GitLab CI ("Predefined CI/CD variables reference"), Jenkins (the ``env-vars.html``
page of every Jenkins), CircleCI ("Project values and variables"), Azure Pipelines ("Use
predefined variables": ``Build.BuildId`` is the environment variable ``BUILD_BUILDID``) and
Buildkite ("Environment variables").
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from pytest_mlflow_tree.model.names import CI_PREFIX

# Every variable read below: tests clear them, since the machine running them may be a CI job.
VARIABLES = (
    "GITHUB_ACTIONS",
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_JOB",
    "GITHUB_SHA",
    "GITHUB_REF",
    "GITHUB_REF_NAME",
    "GITHUB_HEAD_REF",
    "GITHUB_STEP_SUMMARY",
    "GITLAB_CI",
    "CI_PIPELINE_ID",
    "CI_JOB_ID",
    "CI_JOB_URL",
    "CI_COMMIT_SHA",
    "CI_COMMIT_REF_NAME",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    "CI_MERGE_REQUEST_IID",
    "JENKINS_URL",
    "BUILD_TAG",
    "BUILD_NUMBER",
    "BUILD_URL",
    "GIT_COMMIT",
    "BRANCH_NAME",
    "CHANGE_BRANCH",
    "GIT_BRANCH",
    "CHANGE_ID",
    "CIRCLECI",
    "CIRCLE_WORKFLOW_ID",
    "CIRCLE_BUILD_NUM",
    "CIRCLE_BUILD_URL",
    "CIRCLE_SHA1",
    "CIRCLE_BRANCH",
    "CIRCLE_PR_NUMBER",
    "CIRCLE_PULL_REQUEST",
    "TF_BUILD",
    "BUILD_BUILDID",
    "SYSTEM_JOBID",
    "SYSTEM_COLLECTIONURI",
    "SYSTEM_TEAMPROJECT",
    "BUILD_SOURCEVERSION",
    "BUILD_SOURCEBRANCH",
    "SYSTEM_PULLREQUEST_SOURCEBRANCH",
    "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER",
    "SYSTEM_PULLREQUEST_PULLREQUESTID",
    "BUILDKITE",
    "BUILDKITE_BUILD_ID",
    "BUILDKITE_JOB_ID",
    "BUILDKITE_BUILD_URL",
    "BUILDKITE_COMMIT",
    "BUILDKITE_BRANCH",
    "BUILDKITE_PULL_REQUEST",
)

Env = Mapping[str, str]


def _first(env: Env, *names: str) -> str:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return ""


def _github(env: Env) -> dict[str, str]:
    run_id = env.get("GITHUB_RUN_ID", "")
    url = ""
    if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_REPOSITORY") and run_id:
        url = f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_REPOSITORY']}/actions/runs/{run_id}"
        if env.get("GITHUB_RUN_ATTEMPT"):
            url += f"/attempts/{env['GITHUB_RUN_ATTEMPT']}"
    # A pull_request event checks out refs/pull/<number>/merge.
    match = re.fullmatch(r"refs/pull/(\d+)/\w+", env.get("GITHUB_REF", ""))
    return {
        "pipeline_id": run_id,
        "job_id": env.get("GITHUB_JOB", ""),
        "job_url": url,
        # GITHUB_HEAD_REF is the pull request's source branch, set for pull request events only.
        "branch": _first(env, "GITHUB_HEAD_REF", "GITHUB_REF_NAME"),
        "commit": env.get("GITHUB_SHA", ""),
        "pull_request": match.group(1) if match else "",
    }


def _gitlab(env: Env) -> dict[str, str]:
    return {
        "pipeline_id": env.get("CI_PIPELINE_ID", ""),
        "job_id": env.get("CI_JOB_ID", ""),
        "job_url": env.get("CI_JOB_URL", ""),
        "branch": _first(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_REF_NAME"),
        "commit": env.get("CI_COMMIT_SHA", ""),
        "pull_request": env.get("CI_MERGE_REQUEST_IID", ""),
    }


def _jenkins(env: Env) -> dict[str, str]:
    return {
        # BUILD_TAG is "jenkins-${JOB_NAME}-${BUILD_NUMBER}": unique across jobs.
        "pipeline_id": env.get("BUILD_TAG", ""),
        "job_id": env.get("BUILD_NUMBER", ""),
        "job_url": env.get("BUILD_URL", ""),
        "branch": _first(env, "CHANGE_BRANCH", "BRANCH_NAME", "GIT_BRANCH"),
        "commit": env.get("GIT_COMMIT", ""),
        "pull_request": env.get("CHANGE_ID", ""),
    }


def _circleci(env: Env) -> dict[str, str]:
    pull_request = env.get("CIRCLE_PR_NUMBER", "")
    if not pull_request:
        # CIRCLE_PULL_REQUEST is the pull request's URL, ending in its number.
        pull_request = env.get("CIRCLE_PULL_REQUEST", "").rstrip("/").rsplit("/", 1)[-1]
    return {
        "pipeline_id": env.get("CIRCLE_WORKFLOW_ID", ""),
        "job_id": env.get("CIRCLE_BUILD_NUM", ""),
        "job_url": env.get("CIRCLE_BUILD_URL", ""),
        "branch": env.get("CIRCLE_BRANCH", ""),
        "commit": env.get("CIRCLE_SHA1", ""),
        "pull_request": pull_request if pull_request.isdigit() else "",
    }


def _azure(env: Env) -> dict[str, str]:
    build_id = env.get("BUILD_BUILDID", "")
    collection, project = env.get("SYSTEM_COLLECTIONURI", ""), env.get("SYSTEM_TEAMPROJECT", "")
    url = ""
    if collection and project and build_id:
        url = f"{collection.rstrip('/')}/{project}/_build/results?buildId={build_id}"
    branch = _first(env, "SYSTEM_PULLREQUEST_SOURCEBRANCH", "BUILD_SOURCEBRANCH")
    return {
        "pipeline_id": build_id,
        "job_id": env.get("SYSTEM_JOBID", ""),
        "job_url": url,
        "branch": branch.removeprefix("refs/heads/"),
        "commit": env.get("BUILD_SOURCEVERSION", ""),
        # The number for GitHub pull requests, whose id differs from it; the id elsewhere.
        "pull_request": _first(
            env, "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", "SYSTEM_PULLREQUEST_PULLREQUESTID"
        ),
    }


def _buildkite(env: Env) -> dict[str, str]:
    build_url, job_id = env.get("BUILDKITE_BUILD_URL", ""), env.get("BUILDKITE_JOB_ID", "")
    pull_request = env.get("BUILDKITE_PULL_REQUEST", "")
    return {
        "pipeline_id": env.get("BUILDKITE_BUILD_ID", ""),
        "job_id": job_id,
        # The build page scrolls to the job by its id.
        "job_url": f"{build_url}#{job_id}" if build_url and job_id else build_url,
        "branch": env.get("BUILDKITE_BRANCH", ""),
        "commit": env.get("BUILDKITE_COMMIT", ""),
        "pull_request": "" if pull_request == "false" else pull_request,
    }


# (name, is it this provider?, its tags), in the order checked.
_PROVIDERS: tuple[tuple[str, Callable[[Env], bool], Callable[[Env], dict[str, str]]], ...] = (
    ("github-actions", lambda env: env.get("GITHUB_ACTIONS") == "true", _github),
    ("gitlab", lambda env: env.get("GITLAB_CI") == "true", _gitlab),
    ("buildkite", lambda env: env.get("BUILDKITE") == "true", _buildkite),
    ("circleci", lambda env: env.get("CIRCLECI") == "true", _circleci),
    ("azure-pipelines", lambda env: env.get("TF_BUILD", "").lower() == "true", _azure),
    ("jenkins", lambda env: bool(env.get("JENKINS_URL")), _jenkins),
)


def detect(env: Env) -> dict[str, str]:
    """The CI facts, without the tag prefix; empty outside a known CI provider."""
    for name, matches, read in _PROVIDERS:
        if matches(env):
            facts = {key: value for key, value in read(env).items() if value}
            return {"provider": name, **facts}
    return {}


def ci_tags(env: Env) -> dict[str, str]:
    return {CI_PREFIX + key: value for key, value in detect(env).items()}


def pipeline_key(env: Env) -> str | None:
    """A key shared by every job of this CI pipeline run, or ``None`` outside CI."""
    facts = detect(env)
    if "pipeline_id" not in facts:
        return None
    return f"{facts['provider']}-{facts['pipeline_id']}"


def append_step_summary(env: Env, markdown: str) -> None:
    """On GitHub Actions, add ``markdown`` to the job's summary page; elsewhere nothing."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if env.get("GITHUB_ACTIONS") != "true" or not path:
        return
    # The summary is a nicety: an unwritable file must not disturb the test run.
    with contextlib.suppress(OSError), Path(path).open("a", encoding="utf-8") as file:
        file.write(markdown.rstrip("\n") + "\n\n")
