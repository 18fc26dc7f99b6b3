"""The reused per-thread packer packs exactly what msgpack.packb does, whatever came before."""

from __future__ import annotations

import threading

import msgpack
import pytest

from channels_distributed.protocol.packing import pack


def expected(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def test_same_bytes_as_packb() -> None:
    for value in ({"type": "http", "headers": [(b"a", b"b")]}, [1, None, "é", b"\x00"], 2**40):
        assert pack(value) == expected(value)


def test_a_value_that_cannot_be_packed_leaves_nothing_behind() -> None:
    with pytest.raises(TypeError):
        pack({"fine": 1, "not": object()})
    assert pack({"next": True}) == expected({"next": True})


def test_large_messages_then_small_ones() -> None:
    big = b"x" * (3 << 20)
    assert pack(big) == expected(big)
    assert pack([1, 2]) == expected([1, 2])


def test_threads_never_mix_their_output() -> None:
    wrong: list[int] = []

    def run(offset: int) -> None:
        for i in range(5000):
            value = {"i": i + offset, "s": "x" * (i % 64)}
            if pack(value) != expected(value):
                wrong.append(i)

    threads = [threading.Thread(target=run, args=(n * 10_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert wrong == []
