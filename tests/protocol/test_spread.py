"""Spread routes' sub-queues, in memory: names, slots spread evenly over the slot space, and
the settings that ask for them."""

from __future__ import annotations

import itertools

import pytest

from channels_distributed.conf import DistributorConfig
from channels_distributed.exceptions import ConfigurationError
from channels_distributed.protocol.keys import SLOTS, DistKeys, key_slot
from channels_distributed.protocol.routing import valid_route_key
from channels_distributed.protocol.spread import (
    MAX_SPREAD,
    covering,
    logical_key,
    slot_range,
    sub_queues,
)

KEYS = ("api", "t", "site", "team-blue", "A.b_c-9", "x" * 99)


@pytest.mark.parametrize("n", range(1, 9))
@pytest.mark.parametrize("key", KEYS)
def test_the_sub_queues_take_one_slot_range_each(key: str, n: int) -> None:
    names = sub_queues(key, n)
    assert len(names) == n and names[0] == key  # sub-queue 0: the route key itself
    slots = [key_slot(DistKeys("asgi").queue(name)) for name in names]
    ranges = sorted(next(i for i in range(n) if slot_range(i, n)[0] <= s < slot_range(i, n)[1])
                    for s in slots)
    assert ranges == list(range(n))  # one slot in each n-th of the slot space


@pytest.mark.parametrize("key", KEYS)
def test_every_key_of_a_sub_queue_shares_its_slot_and_never_a_route_key(key: str) -> None:
    keys = DistKeys("asgi")
    for name in sub_queues(key, 5)[1:]:
        assert not valid_route_key(name)  # no route can resolve to it
        assert logical_key(name) == key
        slot = key_slot(keys.queue(name))
        assert {key_slot(keys.processing(name, "w-1")), key_slot(keys.registry(name)),
                key_slot(keys.state(name, "c1")), key_slot(keys.reap_lock(name))} == {slot}
    assert logical_key(key) == key


def test_the_ranges_cover_the_slot_space() -> None:
    for n in range(1, MAX_SPREAD + 1):
        bounds = [slot_range(i, n) for i in range(n)]
        assert bounds[0][0] == 0 and bounds[-1][1] == SLOTS
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))


def test_workers_cover_every_spread_announced_and_the_key() -> None:
    assert covering("api", []) == {"api"}
    assert covering("api", [3, 2]) == {*sub_queues("api", 3), *sub_queues("api", 2)}
    with pytest.raises(ValueError):
        sub_queues("api", MAX_SPREAD + 1)


def test_the_spread_setting_is_checked() -> None:
    config = DistributorConfig.from_options({"/": "api"}, url="redis://h:1", spread={"api": 3})
    assert config.spread == {"api": 3}
    for bad in ({"api": 0}, {"api": MAX_SPREAD + 1}, {"api": 2.0}, {"api": True},
                {"no/key": 2}, ["api"]):
        with pytest.raises(ConfigurationError) as caught:
            DistributorConfig.from_options({"/": "api"}, url="redis://h:1", spread=bad)
        assert caught.value.setting == "spread"
        assert "{'api': 3}" in caught.value.fix
