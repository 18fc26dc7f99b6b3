"""Which errors from Redis are worth waiting out, and what to tell the operator about the rest.

Only a connection that failed, and the few states a healthy server passes through (loading its
data, a busy script, a failover in progress), are transient: waiting fixes them. Anything else
Redis refuses — an ACL without a command or the key prefix (NOPERM), a key of another type
under the prefix (WRONGTYPE), a cluster node not recognised as one (MOVED) — is permanent:
it reaches the caller at once, as ``RedisRefused`` (or ``UnsupportedServer``), with a message
that says what to fix, and loops that must go on (a worker's take loop, the process inbox) log
it at ERROR. On a cluster the transport found, MOVED and ASK are transient: a slot moved, the
slot map is refreshed, and the next attempt goes where the slot lives now.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from .. import metrics
from ..conf.hosts import HostSpec
from ..exceptions import RedisRefused, RedisUnavailable, ReplyError, UnsupportedServer

__all__ = ["LAYER_ACL", "WORKER_ACL", "after_push", "complain", "denied", "refusal", "replies",
           "report"]

logger = logging.getLogger(__name__)

#: What the channel layer needs of a Redis ACL user (prefix 'asgi'; README.rst).
#: On Redis 6.2 leave out +blmpop (6.2 does not know it; BLPOP + LPOP are used instead).
LAYER_ACL = ("~asgi:* resetchannels -@all +evalsha +eval +script|load +llen +rpush +lpush "
             "+pexpire +pttl +blmpop +blpop +lpop +zadd +expire +zrem +zremrangebyscore "
             "+zrange +scan +unlink +select +cluster|shards +cluster|info")
#: What the distributor and the workers need on top of LAYER_ACL.
WORKER_ACL = ("&asgi:presence:* +blmove +lmove +lrem +lrange +sadd +srem +smembers +scard "
              "+set +del +subscribe +pubsub|numsub +info")

# Error codes of a server that is fine but cannot answer right now.
_TRANSIENT = ("LOADING", "BUSY", "MASTERDOWN", "UNBLOCKED", "OOM", "ERR max number of clients")
_CLUSTER = ("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")
_PERMISSION = ("NOPERM", "can't run this command", "can't access", "no permissions")
_SCRIPT_ERROR = re.compile(r"@user_script:\d+: (.*)", re.DOTALL)
_REPORT_EVERY = 60.0
_reported: dict[str, float] = {}


def denied(text: str) -> bool:
    """Whether an error text of Redis is an ACL's refusal (NOPERM: a command, a key or a
    channel the user may not use), in the wordings of Redis 6.2, 7 and Valkey."""
    return any(marker in text for marker in _PERMISSION)


def refusal(exc: ReplyError, command: str, key: str | None, spec: HostSpec) -> Exception:
    """``exc`` (Redis' answer to ``command`` on ``key``) as the error to raise: a
    RedisUnavailable when waiting can fix it, else a RedisRefused that says what to fix."""
    error = _classify(exc, command, key, spec)
    if metrics.LAYER is not None and not isinstance(error, RedisUnavailable):
        metrics.LAYER.redis_error("refused")
    return error


def _classify(exc: ReplyError, command: str, key: str | None, spec: HostSpec) -> Exception:
    text = str(exc)
    inner = _SCRIPT_ERROR.search(text)  # an error of a command a script ran: its own code
    code = (inner.group(1) if inner else text).split(" ", 1)[0]
    if inner:
        text = inner.group(1)
    text = text.strip().rstrip(".")
    where = spec.describe()
    if key is not None:
        command = f"{command} on {key!r}"
    if text.startswith(_TRANSIENT) or (code == "READONLY" and spec.sentinels):
        # (READONLY through Sentinel: a failover is under way; the master is re-resolved.)
        return RedisUnavailable(f"Redis {where} cannot run {command} now: {text}")
    if code in _CLUSTER:
        if spec.cluster:
            # A slot moved (resharding, a promoted replica): the slot map is being refreshed
            # (cluster.py), and the next attempt goes where the slot lives now.
            return RedisUnavailable(f"Redis {where} cannot run {command} now: {text}")
        return UnsupportedServer(
            "hosts", f"{where} is a Redis Cluster node (it answered {command} with {text!r}) "
            "that did not answer CLUSTER SHARDS when the layer started",
            f"grant the Redis user +cluster|shards (see {LAYER_ACL!r}), and make sure the "
            "cluster runs Redis 7.0 or later, or Valkey")
    if denied(text):
        user = spec.username or "default"
        return RedisRefused(
            f"Redis user {user!r} on {where} may not run {command}: {text}. Grant "
            f"it what the layer needs: ACL SETUSER {user} {LAYER_ACL} (with your prefix for "
            f"'asgi'; the distributor and workers also need {WORKER_ACL}; see "
            "README.rst, 'Redis ACL users')")
    return RedisRefused(f"Redis {where} refused {command}: {text}. {_fix(code, text)}")


def _fix(code: str, text: str) -> str:
    if code == "WRONGTYPE":
        return ("Another program keeps a value of another type under this layer's prefix: give "
                "the layer a prefix (or a Redis database) of its own, or delete that key")
    if code == "READONLY":
        return "This server is a read-only replica: point 'hosts' at the master, or at Sentinel"
    if code in ("NOAUTH", "WRONGPASS"):
        return "Give the right username and password in 'hosts'"
    if "invalid bulk length" in text:
        return ("A message was larger than this server's proto-max-bulk-len: set the layer's "
                "max_message_size below it (it is checked before anything is sent), or raise "
                "proto-max-bulk-len")
    if "unknown command" in text:
        return ("The server must be Redis >= 6.2 or Valkey, with none of the layer's commands "
                "renamed or disabled")
    return "This is not an outage: the command will fail the same way until that is fixed"


def complain(exc: ReplyError, command: str, key: str | None, spec: HostSpec) -> Exception:
    """``refusal()``, logged at ERROR when permanent: for loops that retry whatever happens
    (a worker's take loop, presence), so a refusal is never retried silently."""
    if isinstance(exc, RedisRefused):
        error: Exception = exc  # classified already (and reported where that happened)
    else:
        error = refusal(exc, command, key, spec)
        if isinstance(error, RedisRefused):
            report(error)
    return error


def report(error: BaseException) -> None:
    """Log a permanent error at ERROR: once, then at most once a minute while it goes on."""
    text = str(error)
    now = time.monotonic()
    if now - _reported.get(text, -_REPORT_EVERY) < _REPORT_EVERY:
        return
    if len(_reported) > 1000:
        _reported.clear()
    _reported[text] = now
    logger.error("%s", text)


async def replies(futures: list[asyncio.Future[Any]], command: str, key: str,
                  spec: HostSpec) -> list[Any]:
    """Every reply, or the first error (the others are retrieved too, never left dangling);
    an error from Redis says whether waiting can fix it, and if not, what to fix."""
    answers = await asyncio.gather(*futures, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, ReplyError):
            raise refusal(answer, command, key, spec) from None
        if isinstance(answer, BaseException):
            raise answer
    return answers


def after_push(spec: HostSpec, described: str, error: Any) -> RedisRefused:
    """What a push script answers beside its result when a command after the push was refused
    (Redis 6.2 cannot check first): PEXPIRE, or RING_PUSH's PUBLISH ("doorbell ...")."""
    text = error.decode() if isinstance(error, bytes) else str(error)
    if text.startswith("doorbell "):
        return RedisRefused(
            f"Redis {spec.describe()} refused to ring the doorbell of {described}: {text}. The "
            "requests were queued, but idle workers find them within a second only: grant the "
            "Redis user +publish (see README.rst, 'Redis ACL users')")
    return RedisRefused(
        f"Redis {spec.describe()} refused to expire {described}: {text}. The messages were "
        "delivered, but the list will not expire: grant the Redis user +pexpire (see "
        "README.rst, 'Redis ACL users')")
