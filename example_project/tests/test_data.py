"""Checks on the raw dataset and on the train/test split."""

import numpy as np
import pytest
from model import CLASS_NAMES, TEST_SIZE, Dataset, Split

pytestmark = pytest.mark.data

N_FEATURES = 30
MIN_CLASS_SHARE = 0.30


def test_schema(dataset: Dataset) -> None:
    """Feature count, unique names and the expected class names."""
    assert dataset.X.shape == (len(dataset.y), N_FEATURES)
    assert len(set(dataset.feature_names)) == N_FEATURES, "duplicate feature names"
    assert dataset.class_names == CLASS_NAMES


def test_no_missing_or_infinite_values(dataset: Dataset) -> None:
    """Every feature value is a finite number."""
    bad = ~np.isfinite(dataset.X)
    assert not bad.any(), f"{int(bad.sum())} missing or infinite values"


def test_measurements_are_non_negative(dataset: Dataset) -> None:
    """Radii, areas, textures and the like cannot be negative."""
    negative = [
        name
        for name, column in zip(dataset.feature_names, dataset.X.T, strict=True)
        if (column < 0).any()
    ]
    assert not negative, f"negative values in {negative}"


@pytest.mark.parametrize("label", CLASS_NAMES)
def test_class_share(dataset: Dataset, label: str) -> None:
    """No class is so rare that accuracy alone would hide it."""
    share = float(np.mean(dataset.y == CLASS_NAMES.index(label)))
    assert share >= MIN_CLASS_SHARE, f"{label} is only {share:.1%} of the data"


def test_split_sizes(dataset: Dataset, split: Split) -> None:
    """The split uses every sample once, with the configured test share."""
    assert len(split.y_train) + len(split.y_test) == len(dataset.y)
    assert len(split.y_test) / len(dataset.y) == pytest.approx(TEST_SIZE, abs=0.01)


def test_split_is_stratified(split: Split) -> None:
    """Train and test sets have the same class ratio."""
    train_ratio = float(np.mean(split.y_train))
    test_ratio = float(np.mean(split.y_test))
    assert train_ratio == pytest.approx(test_ratio, abs=0.02)


def test_no_leakage_between_train_and_test(split: Split) -> None:
    """No test sample also appears in the training set."""
    train_rows = {row.tobytes() for row in split.X_train}
    leaked = sum(row.tobytes() in train_rows for row in split.X_test)
    assert leaked == 0, f"{leaked} test rows also appear in the training set"
