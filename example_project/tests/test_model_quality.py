"""Held-out quality thresholds for every model under evaluation."""

import mlflow
import mlflow.sklearn
import pytest
from model import CANDIDATE, MODEL_NAMES, Classifier, Split, train
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

pytestmark = pytest.mark.quality


@pytest.mark.parametrize("threshold", [0.90, 0.95])
@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_accuracy_above_threshold(
    trained_models: dict[str, Classifier],
    split: Split,
    model_name: str,
    threshold: float,
    mlflow_run,
) -> None:
    """Test-set accuracy reaches each release threshold."""
    accuracy = accuracy_score(split.y_test, trained_models[model_name].predict(split.X_test))
    # Records accuracy, accuracy.threshold and accuracy.verdict on the test's run.
    mlflow_run.check("accuracy", accuracy, ">=", threshold)


@pytest.mark.parametrize("depth", [2, 4, 8], ids=lambda depth: f"depth={depth}")
def test_decision_tree_f1(split: Split, depth: int) -> None:
    """A single decision tree is a usable fallback at any reasonable depth."""
    model = train("decision_tree", split, max_depth=depth)
    f1 = f1_score(split.y_test, model.predict(split.X_test))
    assert f1 >= 0.90, f"decision tree of depth {depth}: F1 {f1:.3f} < 0.90"


def test_candidate_roc_auc(candidate: Classifier, split: Split, mlflow_live_run) -> None:
    """The candidate ranks benign above malignant samples almost perfectly.

    A live run: MLflow's own API logs into this test's run, here the model that was checked.
    """
    auc = roc_auc_score(split.y_test, candidate.predict_proba(split.X_test)[:, 1])
    mlflow.log_metric("roc_auc", auc)
    mlflow.sklearn.log_model(
        candidate, "model", serialization_format="cloudpickle", pip_requirements=["scikit-learn"]
    )
    assert auc >= 0.98, f"{CANDIDATE}: ROC AUC {auc:.4f} < 0.98"


def test_candidate_beats_majority_baseline(candidate: Classifier, split: Split) -> None:
    """The candidate is far better than always predicting the majority class."""
    baseline = DummyClassifier(strategy="most_frequent").fit(split.X_train, split.y_train)
    baseline_accuracy = accuracy_score(split.y_test, baseline.predict(split.X_test))
    accuracy = accuracy_score(split.y_test, candidate.predict(split.X_test))
    assert accuracy - baseline_accuracy >= 0.25, (
        f"{CANDIDATE}: accuracy {accuracy:.3f} vs baseline {baseline_accuracy:.3f}"
    )
