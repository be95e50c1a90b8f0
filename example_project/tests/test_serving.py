"""Latency, throughput and artifact-size budgets for serving the candidate."""

import pickle
import statistics
import time

import numpy as np
import pytest
from model import Classifier, Split

pytestmark = pytest.mark.serving

SINGLE_ROW_BUDGET_S = 0.050
BATCH_ROWS = 20_000
BATCH_BUDGET_S = 2.0
MAX_ARTIFACT_BYTES = 5 * 1024 * 1024


def test_single_row_latency(candidate: Classifier, split: Split, mlflow_run) -> None:
    """The median time to score one request stays within budget."""
    timings = []
    for request, row in enumerate(split.X_test[:25]):
        start = time.perf_counter()
        candidate.predict(row[np.newaxis, :])
        timings.append(time.perf_counter() - start)
        # One value per request: a history the MLflow UI draws as a chart.
        mlflow_run.log_metric("latency_ms", timings[-1] * 1000, step=request)
    median = statistics.median(timings)
    mlflow_run.check("median_latency_ms", median * 1000, "<=", SINGLE_ROW_BUDGET_S * 1000)


@pytest.mark.slow
def test_batch_throughput(candidate: Classifier, split: Split) -> None:
    """A nightly batch of requests is scored within budget."""
    repeats = BATCH_ROWS // len(split.X_test) + 1
    batch = np.tile(split.X_test, (repeats, 1))[:BATCH_ROWS]
    start = time.perf_counter()
    candidate.predict(batch)
    elapsed = time.perf_counter() - start
    assert elapsed <= BATCH_BUDGET_S, f"{BATCH_ROWS} rows took {elapsed:.2f} s"


def test_artifact_size(candidate: Classifier, mlflow_run) -> None:
    """The pickled model fits the model registry's size limit."""
    size = len(pickle.dumps(candidate))
    mlflow_run.set_tag("serializer", "pickle")
    mlflow_run.check("model_bytes", size, "<=", MAX_ARTIFACT_BYTES)


@pytest.mark.skip(
    reason="GPU inference check: the model is CPU-only until the ONNX/GPU export lands"
)
def test_gpu_inference_matches_cpu(candidate: Classifier, split: Split) -> None:
    """A GPU-compiled copy of the model agrees with the CPU predictions."""
    raise NotImplementedError("needs a GPU runtime for the exported model")
