"""CI metadata on the session run, and the GitHub Actions job summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import BOTH_STORES, Record

from pytest_mlflow_tree.record import ci

SHA = "83a20ec058e2fb00e7fa4558c4c6e81e2dcf253d"

# Each provider's variables as its documentation describes them, and the tags they give.
PROVIDERS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "github-actions": (
        {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/models",
            "GITHUB_RUN_ID": "1658821493",
            "GITHUB_RUN_ATTEMPT": "2",
            "GITHUB_JOB": "tests",
            "GITHUB_SHA": SHA,
            "GITHUB_REF": "refs/pull/42/merge",
            "GITHUB_REF_NAME": "42/merge",
            "GITHUB_HEAD_REF": "feature/recall",
        },
        {
            "provider": "github-actions",
            "pipeline_id": "1658821493",
            "job_id": "tests",
            "job_url": "https://github.com/acme/models/actions/runs/1658821493/attempts/2",
            "branch": "feature/recall",
            "commit": SHA,
            "pull_request": "42",
        },
    ),
    "gitlab": (
        {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_PIPELINE_ID": "1000",
            "CI_JOB_ID": "2000",
            "CI_JOB_URL": "https://gitlab.com/acme/models/-/jobs/2000",
            "CI_COMMIT_SHA": SHA,
            "CI_COMMIT_REF_NAME": "feature/recall",
            "CI_MERGE_REQUEST_IID": "7",
        },
        {
            "provider": "gitlab",
            "pipeline_id": "1000",
            "job_id": "2000",
            "job_url": "https://gitlab.com/acme/models/-/jobs/2000",
            "branch": "feature/recall",
            "commit": SHA,
            "pull_request": "7",
        },
    ),
    "jenkins": (
        {
            "JENKINS_URL": "https://ci.acme.dev/",
            "BUILD_TAG": "jenkins-models-PR-9-15",
            "BUILD_NUMBER": "15",
            "BUILD_URL": "https://ci.acme.dev/job/models/job/PR-9/15/",
            "GIT_COMMIT": SHA,
            "BRANCH_NAME": "PR-9",
            "CHANGE_BRANCH": "feature/recall",
            "CHANGE_ID": "9",
        },
        {
            "provider": "jenkins",
            "pipeline_id": "jenkins-models-PR-9-15",
            "job_id": "15",
            "job_url": "https://ci.acme.dev/job/models/job/PR-9/15/",
            "branch": "feature/recall",
            "commit": SHA,
            "pull_request": "9",
        },
    ),
    "circleci": (
        {
            "CI": "true",
            "CIRCLECI": "true",
            "CIRCLE_WORKFLOW_ID": "4735ba57-80d0-46e2-8fa0-b28223a86586",
            "CIRCLE_BUILD_NUM": "314",
            "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/models/314",
            "CIRCLE_SHA1": SHA,
            "CIRCLE_BRANCH": "feature/recall",
            "CIRCLE_PULL_REQUEST": "https://github.com/acme/models/pull/11",
        },
        {
            "provider": "circleci",
            "pipeline_id": "4735ba57-80d0-46e2-8fa0-b28223a86586",
            "job_id": "314",
            "job_url": "https://circleci.com/gh/acme/models/314",
            "branch": "feature/recall",
            "commit": SHA,
            "pull_request": "11",
        },
    ),
    "azure-pipelines": (
        {
            "TF_BUILD": "True",
            "BUILD_BUILDID": "555",
            "SYSTEM_JOBID": "12f1170f-54f2-53f3-20dd-22fc7dff55f9",
            "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
            "SYSTEM_TEAMPROJECT": "models",
            "BUILD_SOURCEVERSION": SHA,
            "BUILD_SOURCEBRANCH": "refs/heads/main",
        },
        {
            "provider": "azure-pipelines",
            "pipeline_id": "555",
            "job_id": "12f1170f-54f2-53f3-20dd-22fc7dff55f9",
            "job_url": "https://dev.azure.com/acme/models/_build/results?buildId=555",
            "branch": "main",
            "commit": SHA,
        },
    ),
    "buildkite": (
        {
            "CI": "true",
            "BUILDKITE": "true",
            "BUILDKITE_BUILD_ID": "9e08ef3c-d6e6-4a86-91dd-577ce5205b8e",
            "BUILDKITE_JOB_ID": "e44f9784-e20e-4b93-a21d-f41fd5869db9",
            "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/models/builds/1514",
            "BUILDKITE_COMMIT": SHA,
            "BUILDKITE_BRANCH": "main",
            "BUILDKITE_PULL_REQUEST": "false",
        },
        {
            "provider": "buildkite",
            "pipeline_id": "9e08ef3c-d6e6-4a86-91dd-577ce5205b8e",
            "job_id": "e44f9784-e20e-4b93-a21d-f41fd5869db9",
            "job_url": "https://buildkite.com/acme/models/builds/1514"
            "#e44f9784-e20e-4b93-a21d-f41fd5869db9",
            "branch": "main",
            "commit": SHA,
        },
    ),
}


@pytest.fixture
def no_ci(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No CI variables: the machine running these tests may itself be a CI job."""
    for name in (*ci.VARIABLES, "CI"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_each_provider_is_read_from_its_documented_variables(provider: str) -> None:
    env, expected = PROVIDERS[provider]
    assert ci.detect(env) == expected
    assert ci.ci_tags(env) == {f"pytest.ci.{k}": v for k, v in expected.items()}
    assert ci.pipeline_key(env) == f"{provider}-{expected['pipeline_id']}"


def test_outside_ci_there_are_no_ci_tags() -> None:
    assert ci.detect({"PATH": "/usr/bin", "CI": "true"}) == {}
    assert ci.pipeline_key({}) is None


@BOTH_STORES
def test_on_github_actions_the_session_run_is_tagged_and_the_job_summary_written(
    pytester: pytest.Pytester, record: Record, no_ci: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env, expected = PROVIDERS["github-actions"]
    for name, value in env.items():
        no_ci.setenv(name, value)
    summary = tmp_path / "step-summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    no_ci.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(
        test_ci="""
            def test_ok():
                pass

            def test_bad():
                assert 1 == 2
        """
    )
    result, tree = record(live=True)
    result.assert_outcomes(passed=1, failed=1)

    tags = tree.session.data.tags
    for key, value in expected.items():
        assert tags[f"pytest.ci.{key}"] == value
    for test in tree.level("test"):
        assert not any(key.startswith("pytest.ci.") for key in test.data.tags)

    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n")  # appended, not replaced
    assert "### pytest session" in text
    assert "**1 failed**, 1 passed" in text
    assert "`test_ci.py::test_bad`" in text
    assert tree.session.info.run_id in text


def test_elsewhere_no_job_summary_and_no_ci_tags(
    pytester: pytest.Pytester, record: Record, no_ci: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "step-summary.md"
    no_ci.setenv("GITHUB_STEP_SUMMARY", str(summary))  # without GITHUB_ACTIONS=true
    pytester.makepyfile(test_ci="def test_ok(): pass")
    result, tree = record()
    result.assert_outcomes(passed=1)
    assert not summary.exists()
    assert not any(key.startswith("pytest.ci.") for key in tree.session.data.tags)
