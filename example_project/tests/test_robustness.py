"""Behaviour under input noise, instrument drift and per-class slices."""

import logging

import numpy as np
import pytest
from model import CANDIDATE, CLASS_NAMES, SEED, Classifier, Split
from sklearn.metrics import accuracy_score, confusion_matrix

pytestmark = pytest.mark.robustness

logger = logging.getLogger(__name__)

MAX_FLIP_RATE = 0.02
RECALL_TARGET = 0.95


@pytest.mark.parametrize(
    "noise_level",
    [0.01, 0.05, pytest.param(0.10, marks=pytest.mark.slow)],
    ids=lambda level: f"noise={level:.0%}",
)
def test_predictions_stable_under_noise(
    candidate: Classifier, split: Split, noise_level: float
) -> None:
    """Small measurement noise rarely changes a prediction."""
    rng = np.random.default_rng(SEED)
    scale = noise_level * split.X_train.std(axis=0)
    noisy = split.X_test + rng.normal(size=split.X_test.shape) * scale
    flip_rate = float(np.mean(candidate.predict(noisy) != candidate.predict(split.X_test)))
    assert flip_rate <= MAX_FLIP_RATE, (
        f"{flip_rate:.1%} of predictions changed under {noise_level:.0%} noise"
    )


def test_batch_and_single_row_predictions_agree(candidate: Classifier, split: Split) -> None:
    """Predicting one row at a time gives the same answers as one batch."""
    rows = split.X_test[:20]
    one_by_one = np.concatenate([candidate.predict(row[np.newaxis, :]) for row in rows])
    np.testing.assert_array_equal(one_by_one, candidate.predict(rows))


@pytest.mark.parametrize("label", CLASS_NAMES)
def test_per_class_recall(
    candidate: Classifier, split: Split, label: str, record_property, mlflow_run
) -> None:
    """Each class, including the rarer malignant one, meets the recall target."""
    class_index = CLASS_NAMES.index(label)
    predictions = candidate.predict(split.X_test)
    in_class = split.y_test == class_index
    found = int(np.sum(predictions[in_class] == class_index))
    total = int(np.sum(in_class))
    recall = found / total

    matrix = confusion_matrix(split.y_test, predictions)
    print(f"confusion matrix of {CANDIDATE} (rows: true {', '.join(CLASS_NAMES)}):")
    print(matrix)
    print(f"{label}: {found}/{total} test samples recognised, recall {recall:.3f}")
    logger.info("recall[%s] = %.3f (target %.2f)", label, recall, RECALL_TARGET)
    # Shows in JUnit XML and, as metrics, on the test's run.
    record_property("recall", recall)
    record_property("missed", total - found)
    mlflow_run.log_dict(
        {"rows_true": list(CLASS_NAMES), "matrix": matrix.tolist()}, "confusion_matrix.json"
    )
    if recall < RECALL_TARGET:
        logger.warning("%d %s test samples were misclassified", total - found, label)

    assert recall >= RECALL_TARGET, (
        f"{CANDIDATE} recall for {label!r} is {recall:.3f} ({found}/{total}), "
        f"below the target {RECALL_TARGET}: {total - found} {label} cases were missed. "
        "Consider class_weight='balanced' or a lower decision threshold for this class."
    )


@pytest.mark.xfail(
    reason="known weakness: no drift augmentation in training, accuracy drops to about "
    "0.75 when every measurement reads half a standard deviation high",
    strict=True,
)
def test_accuracy_under_instrument_drift(candidate: Classifier, split: Split) -> None:
    """Accuracy survives a systematic calibration offset of the scanner."""
    drifted = split.X_test + 0.5 * split.X_train.std(axis=0)
    accuracy = accuracy_score(split.y_test, candidate.predict(drifted))
    assert accuracy >= 0.90, f"accuracy under drift {accuracy:.3f} < 0.90"
