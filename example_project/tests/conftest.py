"""Session-scoped fixtures: load the data and train the models once."""

import pytest
from model import (
    CANDIDATE,
    MODEL_NAMES,
    Classifier,
    Dataset,
    Split,
    load_dataset,
    split_dataset,
    train,
)


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    """The full dataset."""
    return load_dataset()


@pytest.fixture(scope="session")
def split(dataset: Dataset) -> Split:
    """The fixed, stratified train/test split."""
    return split_dataset(dataset)


@pytest.fixture(scope="session")
def trained_models(split: Split) -> dict[str, Classifier]:
    """Every model under evaluation, fitted on the training set."""
    return {name: train(name, split) for name in MODEL_NAMES}


@pytest.fixture(scope="session")
def candidate(trained_models: dict[str, Classifier]) -> Classifier:
    """The model proposed for release."""
    return trained_models[CANDIDATE]
