"""Make keys and values fit MLflow's limits without losing anything.

``create_run`` validates nothing, and PostgreSQL rejects what SQLite accepts, so every value is
checked here. What had to be changed is kept whole in a side artifact.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

# MLflow's own rule for param, metric and tag keys (mlflow.utils.validation).
_KEY_CHARS = re.compile(r"[^/\w.\- :]")

FULL_VALUES_ARTIFACT = "pytest-mlflow-tree/full-values.json"

V = TypeVar("V")


@dataclass(frozen=True)
class Limits:
    """MLflow's limits; the uploader reads the installed MLflow's values when it has them."""

    key_length: int = 250
    param_value_length: int = 6000
    tag_value_length: int = 8000
    # The runs table's name column is 250 characters on every SQL backend.
    run_name_length: int = 250
    params_tags_per_batch: int = 100
    metrics_per_batch: int = 1000
    # Metrics, params and tags together in one log_batch.
    entities_per_batch: int = 1000


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def valid_text(text: str, length: int) -> str:
    """``text`` as a store accepts it: PostgreSQL rejects NUL characters, which SQLite keeps."""
    return truncate(text.replace("\x00", "\\x00"), length)


def truncate(text: str, length: int) -> str:
    if len(text) <= length:
        return text
    marker = f"...[{len(text)} chars, full value in {FULL_VALUES_ARTIFACT}]"
    return text[: max(0, length - len(marker))] + marker


def safe_key(key: str, length: int) -> str:
    """A valid MLflow key close to ``key``; different keys stay different."""
    fixed = _KEY_CHARS.sub("_", key)
    # MLflow also rejects keys that normalise to another path ("a//b", "a/../b", "/a", ".").
    if posixpath.normpath(fixed) != fixed or fixed.startswith((".", "/")) or not fixed:
        fixed = fixed.replace("/", "_").lstrip(".") or "_"
    if fixed != key or len(fixed) > length:
        # A hash of the original keeps two keys that differ only in rejected characters apart.
        fixed = f"{fixed[: length - 9]}-{_short_hash(key)}"
    return fixed


@dataclass
class Fitted:
    """Values made valid, and the originals of whatever had to change."""

    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    changed: dict[str, dict[str, str]] = field(default_factory=dict)

    def take(
        self,
        kind: str,
        values: dict[str, V],
        key_length: int,
        fix_value: Callable[[V], V] | None = None,
        shown: Callable[[V], str] = str,
    ) -> dict[str, V]:
        """``values`` with valid keys (and values, by ``fix_value``); changed ones noted.

        Metrics keep their values: a NaN is a valid metric, though not equal to itself.
        """
        out: dict[str, V] = {}
        for key, value in values.items():
            new_key = safe_key(key, key_length)
            new_value = value if fix_value is None else fix_value(value)
            if new_key != key or (fix_value is not None and new_value != value):
                self.changed.setdefault(kind, {})[key] = shown(value)
            out[new_key] = new_value
        return out


def fit(
    limits: Limits,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
) -> Fitted:
    out = Fitted()
    length = limits.key_length
    out.params = out.take("params", params or {}, length, _fixer(limits.param_value_length))
    out.tags = out.take("tags", tags or {}, length, _fixer(limits.tag_value_length))
    out.metrics = out.take("metrics", metrics or {}, length, shown=repr)
    return out


def _fixer(length: int) -> Callable[[str], str]:
    return lambda text: valid_text(text, length)
