"""Keys and values made to fit MLflow's limits, and the originals kept of what changed."""

from __future__ import annotations

import math

import pytest

from pytest_mlflow_tree.model.limits import (
    FULL_VALUES_ARTIFACT,
    Limits,
    fit,
    safe_key,
    truncate,
    valid_text,
)


def test_text_within_the_limit_is_unchanged() -> None:
    assert valid_text("plain text", 10) == "plain text"


def test_nul_characters_are_written_out_for_postgresql() -> None:
    assert valid_text("a\x00b", 100) == "a\\x00b"


def test_a_value_over_the_limit_ends_in_a_marker_and_fits_exactly() -> None:
    cut = truncate("x" * 10_000, 300)
    assert len(cut) == 300
    assert cut.startswith("xxx")
    assert cut.endswith(f"...[10000 chars, full value in {FULL_VALUES_ARTIFACT}]")


def test_the_limit_counts_characters_not_bytes() -> None:
    text = "é" * 6000
    assert valid_text(text, 6000) == text


def test_a_value_made_longer_by_its_nul_characters_is_cut_to_the_limit() -> None:
    assert len(valid_text("\x00" * 100, 200)) == 200


@pytest.mark.parametrize("key", ["pytest/duration", "loss", "a.b-c d:e", "clé_ü"])
def test_valid_keys_are_unchanged(key: str) -> None:
    assert safe_key(key, 250) == key


def test_rejected_characters_are_replaced_and_a_hash_keeps_keys_apart() -> None:
    question, star = safe_key("a?b", 250), safe_key("a*b", 250)
    assert question.startswith("a_b-")
    assert star.startswith("a_b-")
    assert question != star
    # Nor does a fitted key collide with the valid key it now resembles.
    assert safe_key("a_b", 250) == "a_b" != question


@pytest.mark.parametrize("key", ["a//b", "a/../b", "/a", "a/", ".", "..", ".hidden", ""])
def test_keys_that_normalise_to_another_path_are_made_plain(key: str) -> None:
    fixed = safe_key(key, 250)
    assert fixed
    assert not fixed.startswith((".", "/"))
    assert "//" not in fixed
    assert "/../" not in fixed


def test_a_key_over_the_limit_is_cut_to_the_limit_and_stays_unique() -> None:
    first, second = "k" * 300 + "1", "k" * 300 + "2"
    assert len(safe_key(first, 250)) == 250
    assert safe_key(first, 250) != safe_key(second, 250)


def test_a_key_with_a_lone_surrogate_is_fitted_without_error() -> None:
    fixed = safe_key("bad\udcffkey", 250)
    assert fixed.startswith("bad_key-")
    fixed.encode("utf-8")


def test_fit_keeps_the_originals_of_what_it_changed_and_only_those() -> None:
    long_tag = "t" * 20_000
    fitted = fit(
        Limits(),
        params={"ok": "1", "bad key?": "v"},
        tags={"note": long_tag, "fine": "yes"},
        metrics={"loss": 0.5, "m?": 1.0},
    )
    assert fitted.params["ok"] == "1"
    assert len(fitted.tags["note"]) == Limits().tag_value_length
    assert fitted.changed == {
        "params": {"bad key?": "v"},
        "tags": {"note": long_tag},
        "metrics": {"m?": "1.0"},
    }


def test_fit_applies_the_param_and_tag_limits_apart() -> None:
    limits = Limits(param_value_length=100, tag_value_length=200)
    fitted = fit(limits, params={"p": "v" * 150}, tags={"t": "v" * 150})
    assert len(fitted.params["p"]) == 100
    assert fitted.tags["t"] == "v" * 150


def test_fit_passes_nan_and_infinite_metrics_through() -> None:
    fitted = fit(Limits(), metrics={"nan": math.nan, "inf": math.inf, "-inf": -math.inf})
    assert math.isnan(fitted.metrics["nan"])
    assert fitted.metrics["inf"] == math.inf
    assert fitted.metrics["-inf"] == -math.inf
    assert fitted.changed == {}


def test_fit_of_nothing_is_empty() -> None:
    fitted = fit(Limits())
    assert (fitted.params, fitted.tags, fitted.metrics, fitted.changed) == ({}, {}, {}, {})


def test_fit_with_a_short_key_limit_fits_every_key() -> None:
    fitted = fit(Limits(key_length=20), tags={"a" * 30: "1", "a" * 31: "2"})
    assert len(fitted.tags) == 2
    assert all(len(key) <= 20 for key in fitted.tags)
