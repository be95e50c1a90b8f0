"""Data loading and model building for the example validation suite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

SEED = 42
TEST_SIZE = 0.25
CLASS_NAMES = ("malignant", "benign")
MODEL_NAMES = ("logreg", "random_forest")
CANDIDATE = "random_forest"

Features = NDArray[np.float64]
Labels = NDArray[np.int64]


class Classifier(Protocol):
    """The part of the scikit-learn estimator API the tests rely on."""

    def fit(self, X: Features, y: Labels) -> Classifier: ...

    def predict(self, X: Features) -> Labels: ...

    def predict_proba(self, X: Features) -> Features: ...


@dataclass(frozen=True)
class Dataset:
    """Feature matrix, labels and their names."""

    X: Features
    y: Labels
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class Split:
    """A stratified train/test split."""

    X_train: Features
    X_test: Features
    y_train: Labels
    y_test: Labels


def load_dataset() -> Dataset:
    """Load the Wisconsin breast cancer data bundled with scikit-learn."""
    bunch = load_breast_cancer()
    return Dataset(
        X=np.asarray(bunch.data, dtype=np.float64),
        y=np.asarray(bunch.target, dtype=np.int64),
        feature_names=tuple(str(name) for name in bunch.feature_names),
        class_names=tuple(str(name) for name in bunch.target_names),
    )


def split_dataset(data: Dataset, test_size: float = TEST_SIZE, seed: int = SEED) -> Split:
    """Split into train and test sets, keeping the class ratio."""
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=test_size, stratify=data.y, random_state=seed
    )
    return Split(X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test)


def build_model(name: str, *, max_depth: int | None = None, seed: int = SEED) -> Classifier:
    """Return an unfitted model by name."""
    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if name == "random_forest":
        return RandomForestClassifier(
            n_estimators=100, max_depth=max_depth, random_state=seed, n_jobs=1
        )
    if name == "decision_tree":
        return DecisionTreeClassifier(max_depth=max_depth, random_state=seed)
    raise ValueError(f"unknown model {name!r}")


def train(name: str, split: Split, *, max_depth: int | None = None) -> Classifier:
    """Build a model and fit it on the training part of ``split``."""
    return build_model(name, max_depth=max_depth).fit(split.X_train, split.y_train)
