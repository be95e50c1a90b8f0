"""MLflow's own limits on keys, values and batches, as the installed MLflow declares them."""

from __future__ import annotations

from mlflow.utils import validation

from pytest_mlflow_tree.model.limits import Limits


def installed() -> Limits:
    """The limits of the installed MLflow; ours where a release does not declare one."""
    default = Limits()
    return Limits(
        key_length=getattr(validation, "MAX_ENTITY_KEY_LENGTH", default.key_length),
        param_value_length=getattr(validation, "MAX_PARAM_VAL_LENGTH", default.param_value_length),
        tag_value_length=getattr(validation, "MAX_TAG_VAL_LENGTH", default.tag_value_length),
        params_tags_per_batch=getattr(
            validation, "MAX_PARAMS_TAGS_PER_BATCH", default.params_tags_per_batch
        ),
        metrics_per_batch=getattr(validation, "MAX_METRICS_PER_BATCH", default.metrics_per_batch),
        entities_per_batch=getattr(
            validation, "MAX_ENTITIES_PER_BATCH", default.entities_per_batch
        ),
    )
