"""Every exception the package raises. Messages say what was expected, what arrived, and the fix."""

from __future__ import annotations

from channels.exceptions import ChannelFull
from channels.exceptions import MessageTooLarge as _ChannelsMessageTooLarge

__all__ = [
    "ChannelFull",
    "ChannelsDistributedError",
    "ClientGone",
    "ConfigurationError",
    "Drained",
    "ForeignChannelError",
    "LifespanFailure",
    "MessageTooLarge",
    "NoWorker",
    "PeerLost",
    "ProtocolError",
    "RedisRefused",
    "RedisUnavailable",
    "ReplyError",
    "Unserved",
    "UnsupportedServer",
    "WorkerSilent",
]


class ChannelsDistributedError(Exception):
    """Base class of this package's own errors."""


class ConfigurationError(ChannelsDistributedError, ValueError):
    """A setting is missing, unknown or of the wrong type. Raised at start-up."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting = setting
        self.problem = problem
        self.fix = fix
        super().__init__(f"{setting}: {problem}. {fix}")


class RedisUnavailable(ChannelsDistributedError, ConnectionError):
    """Redis could not be reached within the retry window; the operation was not performed."""


class ReplyError(ChannelsDistributedError):
    """Redis answered a command with an error."""


class RedisRefused(ReplyError):
    """Redis refused a command for a reason that waiting will not fix: the Redis user's ACL, a
    key of another type under the layer's prefix, a login that is not accepted. Never retried;
    the message says what to change."""


class UnsupportedServer(ConfigurationError, RedisRefused):
    """``hosts`` points at a server of a kind this package does not support yet (a Redis
    Cluster node: it answered MOVED, ASK or CLUSTERDOWN)."""


class MessageTooLarge(ChannelsDistributedError, _ChannelsMessageTooLarge):  # type: ignore[misc]
    """A message is larger, once encoded, than the channel layer's ``max_message_size``; it
    was not sent. (Channels' own ``MessageTooLarge`` too, which the channel layer spec names.)
    """

    def __init__(self, target: str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the message to {target} is {size:,} bytes once encoded, over the channel layer's "
            f"max_message_size of {limit:,} bytes; nothing was sent. Send less per message "
            "(split the data, or store it elsewhere and send a reference to it), or raise "
            "max_message_size in the layer's CONFIG (keep it below the proto-max-bulk-len of "
            "your Redis, 512 MB unless configured otherwise)")


class ProtocolError(ChannelsDistributedError, ValueError):
    """Bytes read from Redis or a peer do not form a valid message."""


class ForeignChannelError(ChannelsDistributedError, ValueError, AssertionError):
    """``receive()`` on a process-local channel made by another layer instance.

    It also subclasses AssertionError because channels_redis signals this case with ``assert``;
    code written against channels_redis that catches it keeps working.
    """


class LifespanFailure(ChannelsDistributedError):
    """The application's ASGI lifespan startup (or shutdown) failed; the process does not serve.

    ``switch_off`` names how to turn the lifespan off: gunicorn's ``--asgi-lifespan off``, or
    ``lifespan='off'`` for a ``Node``."""

    def __init__(self, phase: str, message: str, switch_off: str = "--asgi-lifespan off") -> None:
        self.phase = phase
        super().__init__(
            f"ASGI lifespan {phase} failed: {message or 'no message'}. Fix the application's "
            f"lifespan handler, or run with {switch_off} if it should not run"
        )


class PeerLost(ChannelsDistributedError, ConnectionError):
    """The other side of a forwarded connection (worker or distributor) went away."""


class Unserved(PeerLost):
    """A worker took the request too late to run it (``cd.expired``): it never runs."""


class Drained(PeerLost):
    """The request's route key was drained with nowhere to go (``channels-distributed routes``):
    withdrawn from its queue, it never runs."""


class NoWorker(PeerLost):
    """No worker accepted the connection in time."""


class WorkerSilent(PeerLost):
    """A worker had taken the request by its deadline, then never answered."""


class ClientGone(PeerLost):
    """The client went away: the connection ends here, quietly.

    An ``OSError`` (through ``ConnectionError``): the ``send()`` of an application under the
    ``ASGIWorker`` or in a worker raises it once the client is gone, as ASGI spec 2.4 asks."""
