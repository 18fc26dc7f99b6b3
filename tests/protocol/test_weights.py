"""Splits by weight: their text form, and the smooth weighted round-robin's exact shares."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from channels_distributed.protocol.weights import (
    MAX_TARGETS,
    MAX_WEIGHT,
    SmoothWeighted,
    parse_split,
    split_text,
)


def test_95_5_over_10000_picks_is_exactly_9500_and_500() -> None:
    picker = SmoothWeighted({"api": 95, "api-v2": 5})
    assert Counter(picker.pick() for _ in range(10_000)) == {"api": 9_500, "api-v2": 500}


@pytest.mark.parametrize("weights", [
    {"a": 1, "b": 1}, {"a": 3, "b": 2, "c": 5}, {"a": 7}, {"a": 1, "b": 999},
    {"a": 33, "b": 33, "c": 34}, {f"k{i}": i + 1 for i in range(MAX_TARGETS)},
])
def test_every_run_of_total_picks_holds_each_key_exactly_weight_times(
        weights: dict[str, int]) -> None:
    picker = SmoothWeighted(weights)
    total = sum(weights.values())
    for _ in range(3):  # the same in every run, not just on average
        assert Counter(picker.pick() for _ in range(total)) == weights
    counts = Counter(picker.pick() for _ in range(10_000 // total * total))
    assert counts == {key: weight * (10_000 // total) for key, weight in weights.items()}


def test_the_small_share_is_spread_not_bunched() -> None:
    # 95/5: the five picks of api-v2 in each 100 come one at a time, 20 picks apart.
    picker = SmoothWeighted({"api": 95, "api-v2": 5})
    picks = [picker.pick() for _ in range(1_000)]
    where = [i for i, key in enumerate(picks) if key == "api-v2"]
    assert {b - a for a, b in itertools.pairwise(where)} == {20}


def test_the_picks_are_deterministic() -> None:
    first, second = SmoothWeighted({"a": 5, "b": 3}), SmoothWeighted({"a": 5, "b": 3})
    assert [first.pick() for _ in range(50)] == [second.pick() for _ in range(50)]


def test_a_split_reads_and_writes_its_text_form() -> None:
    assert parse_split("api=95,api-v2=5") == {"api": 95, "api-v2": 5}
    assert parse_split(" api = 95 , api-v2=5 ") == {"api": 95, "api-v2": 5}
    assert split_text({"api": 95, "api-v2": 5}) == "api=95,api-v2=5"


@pytest.mark.parametrize(("text", "fault"), [
    ("", "expected key=weight"),
    ("api", "expected key=weight"),
    ("=5", "expected key=weight"),
    ("api=95,", "expected key=weight"),
    ("api=0", "whole number from 1"),
    ("api=-5", "whole number from 1"),
    ("api=1.5", "whole number from 1"),
    ("api=five", "whole number from 1"),
    ("api=", "whole number from 1"),
    ("api=٣", "whole number from 1"),  # a digit to str.isdigit, not a weight
    (f"api={MAX_WEIGHT + 1}", "whole number from 1"),
    ("api=1,api=2", "given twice"),
    ("a{b}=1", "not a valid route key"),
    ("a b=1", "not a valid route key"),
    (",".join(f"k{i}=1" for i in range(MAX_TARGETS + 1)), f"at most {MAX_TARGETS}"),
])
def test_a_bad_split_is_refused_saying_why(text: str, fault: str) -> None:
    with pytest.raises(ValueError, match=fault):
        parse_split(text)


def test_weights_of_the_wrong_type_are_refused() -> None:
    for weight in (True, 1.0, "1", None):
        with pytest.raises(ValueError, match="whole number"):
            SmoothWeighted({"a": weight})  # type: ignore[dict-item]
