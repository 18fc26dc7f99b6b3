"""The request head's per-value caches (server/head.py), in memory: a target or a field name
handled once gives the same answer every time after, the method still counts where it plays a
part, and the caches stay bounded whatever clients send."""

import pytest

from channels_distributed.server import head


def test_an_origin_form_target_is_split_the_same_way_every_time():
    first = head.target(b"GET", b"/a%20b/c?x=1&y=%41#frag")
    assert first == ("/a b/c", b"/a%20b/c", b"x=1&y=%41")
    # Again (from the cache), and for another method: an origin-form target does not depend on it.
    assert head.target(b"GET", b"/a%20b/c?x=1&y=%41#frag") == first
    assert head.target(b"POST", b"/a%20b/c?x=1&y=%41#frag") == first


def test_the_method_still_decides_the_other_forms():
    assert head.target(b"OPTIONS", b"*") == ("*", b"*", b"")
    with pytest.raises(head.Reject, match="only for OPTIONS"):
        head.target(b"GET", b"*")
    assert head.target(b"CONNECT", b"example.com:443") == ("", b"", b"")
    with pytest.raises(head.Reject, match="invalid request target"):
        head.target(b"GET", b"example.com:443")


def test_targets_stay_right_past_the_caches_bound():
    for n in range(2000):
        assert head.target(b"GET", b"/item/%d?n=%d" % (n, n)) == (f"/item/{n}", b"/item/%d" % n,
                                                                 b"n=%d" % n)
    assert head.target(b"GET", b"/item/7?n=7") == ("/item/7", b"/item/7", b"n=7")


def test_field_names_are_lowercased_and_the_cache_stays_bounded():
    assert head.field_name(b"X-Custom-Header") == b"x-custom-header"
    assert head.FIELD_NAMES[b"X-Custom-Header"] == b"x-custom-header"
    for n in range(2000):
        assert head.field_name(b"X-Name-%d" % n) == b"x-name-%d" % n
        assert len(head.FIELD_NAMES) <= 512
    long_name = b"X-" + b"A" * 300
    assert head.field_name(long_name) == long_name.lower()
    assert long_name not in head.FIELD_NAMES  # only short names are kept

    class Name(bytes):
        pass

    assert head.field_name(Name(b"X-Sub")) == b"x-sub"
    assert b"X-Sub" not in head.FIELD_NAMES  # only exact bytes: a subclass could change its hash
