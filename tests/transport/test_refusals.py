"""What the operator is told about an error Redis answered (in memory)."""

from __future__ import annotations

from channels_distributed.conf.hosts import HostSpec
from channels_distributed.exceptions import RedisRefused, ReplyError
from channels_distributed.transport.refusals import refusal


def test_a_message_over_redis_bulk_limit_names_the_layer_setting() -> None:
    """Where max_message_size was raised above the server's proto-max-bulk-len."""
    error = refusal(ReplyError("ERR Protocol error: invalid bulk length"), "EVALSHA", "k",
                    HostSpec(host="127.0.0.1", port=6379))
    assert isinstance(error, RedisRefused)
    assert "max_message_size" in str(error) and "proto-max-bulk-len" in str(error)
