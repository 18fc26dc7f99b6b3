"""Every Lua script of the package, and the one way they are run.

A ``Script`` is sent by its SHA1 (``EVALSHA``); a server that does not have it (restarted, or
``SCRIPT FLUSH``) answers NOSCRIPT, and the script is then sent once as source (``EVAL``):
``Script.run`` for callers that await a reply, ``Script.retry`` for the batched writer, which
settles its replies in callbacks and loads its scripts first on every new connection (``load``)
so that a retry, which could reorder its pushes, is left for a ``SCRIPT FLUSH`` in between.

A script is not undone when a command in it fails. Were PEXPIRE refused (an ACL without it)
after the RPUSH, the send would fail for a message that was delivered. So where Redis can (7.0+)
the permission is checked before anything is pushed; on 6.2 the PEXPIRE runs under pcall and
its refusal comes back beside the result, for the writer to log.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from ..exceptions import ReplyError
from .resp import RespLink

__all__ = [
    "ACK",
    "ACKED_PUSH",
    "FULL",
    "GIVEN_UP",
    "GIVE_BACK",
    "GIVE_UP",
    "GROUP_ENTRIES",
    "GROUP_SEND",
    "OURS",
    "PUSH",
    "REAPED",
    "REQUEUE",
    "RING_PUSH",
    "TAKE",
    "WRITE_IF_UNCHANGED",
    "Script",
    "acl_probes",
    "load",
    "lost",
    "push_call",
]


class Script:
    """A Lua script, run by EVALSHA; sent as source once when the server lost it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis' script id

    def command(self, keys: list[Any], args: list[Any]) -> tuple[Any, ...]:
        """The EVALSHA command, for a pipeline."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def source_command(self, keys: list[Any], args: list[Any]) -> tuple[Any, ...]:
        """The same as EVAL with the source: for a script run too rarely to load."""
        return ("EVAL", self.source, len(keys), *keys, *args)

    async def run(self, link: RespLink, keys: list[Any], args: list[Any]) -> Any:
        """Run it and return its reply; sent as source once if the server lost it."""
        try:
            return await link.call(*self.command(keys, args))
        except ReplyError as exc:
            if not _noscript(exc):
                raise
        return await link.call(*self.source_command(keys, args))

    def retry(self, link: RespLink, error: BaseException | None, keys: list[Any],
              args: list[Any]) -> asyncio.Future[Any] | None:
        """After a pipelined EVALSHA failed with ``error``: if the server had lost the script
        (nothing ran), the same call sent as source on ``link``; else None."""
        if error is None or not _noscript(error) or not link.is_open:
            return None
        return link.call(*self.source_command(keys, args))


def load(link: RespLink, scripts: tuple[Script, ...]) -> None:
    """Load ``scripts`` on a new connection, before anything that runs them is written."""
    for script in scripts:
        link.call("SCRIPT", "LOAD", script.source).add_done_callback(_consume)


def _noscript(error: BaseException) -> bool:
    return isinstance(error, ReplyError) and str(error).startswith("NOSCRIPT")


def lost(error: BaseException) -> bool:
    """Whether ``error`` (Redis' answer, or the refusal made of it) says that the server did not
    have the script called by its SHA: it ran nothing, and the call may be sent as source."""
    return "NOSCRIPT" in str(error)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved; a failed SCRIPT LOAD shows up as NOSCRIPT later


# The batched writer's ----------------------------------------------------------------------------
# Checks that the user may PEXPIRE KEYS[%d] (redis.acl_check_cmd: Redis 7.0+, needs no extra
# right, unlike ACL DRYRUN which is @admin).
_CHECK_EXPIRE = """
if redis.acl_check_cmd and not redis.acl_check_cmd('PEXPIRE', KEYS[%d], ARGV[2]) then
  return redis.error_reply('NOPERM this user has no permissions to run the pexpire command ' ..
    'on ' .. KEYS[%d] .. ' (checked first: nothing was pushed)')
end
"""
# KEYS[1] = list; ARGV = capacity, ttl_ms, entries... Pushes as many entries as fit under the
# capacity (in order, so FIFO holds) and returns how many it pushed ({n, error} on 6.2 when
# the PEXPIRE was refused).
PUSH = Script("""
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[1])
local n = #ARGV - 2
if room < n then n = room end
if n <= 0 then return 0 end
""" + _CHECK_EXPIRE % (1, 1) + """
redis.call('RPUSH', KEYS[1], unpack(ARGV, 3, n + 2))
local expiry = redis.pcall('PEXPIRE', KEYS[1], ARGV[2])
if type(expiry) == 'table' and expiry.err then return {n, expiry.err} end
return n
""")

# PUSH for a spread route's sub-queue (protocol/spread.py): ARGV = capacity, ttl_ms, doorbell
# channel, entries. A push that makes the list non-empty publishes its key there, waking the
# route's idle workers (worker/spread.py); one to a list that held entries rings nothing. A refused
# PUBLISH comes back beside the count as a refused PEXPIRE does on 6.2 (the entries are in).
RING_PUSH = Script("""
local before = redis.call('LLEN', KEYS[1])
local room = tonumber(ARGV[1]) - before
local n = #ARGV - 3
if room < n then n = room end
if n <= 0 then return 0 end
""" + _CHECK_EXPIRE % (1, 1) + """
redis.call('RPUSH', KEYS[1], unpack(ARGV, 4, n + 3))
local expiry = redis.pcall('PEXPIRE', KEYS[1], ARGV[2])
local rang = before == 0 and redis.pcall('PUBLISH', ARGV[3], KEYS[1])
if type(expiry) == 'table' and expiry.err then return {n, expiry.err} end
if type(rang) == 'table' and rang.err then return {n, 'doorbell ' .. rang.err} end
return n
""")


def push_call(key: str, capacity: int, ttl_ms: int, entries: list[bytes],
              ring: str | None) -> tuple[Script, list[Any], list[Any]]:
    """The writer's push: script, keys, arguments (RING_PUSH for a list with a doorbell)."""
    if ring is None:
        return PUSH, [key], [capacity, ttl_ms, *entries]
    return RING_PUSH, [key], [capacity, ttl_ms, ring, *entries]


# KEYS[1] = processing list, KEYS[2] = list, then one state key per request; ARGV = capacity,
# ttl_ms, then pairs of (taken request, entry). For each pair, in order: acknowledge the request
# and push its entry, as one step. Each answer is an acknowledgement's (ACK below: OURS, REAPED,
# GIVEN_UP, nothing pushed for the last two), or FULL when the list had no room (acknowledged,
# nothing pushed). One call carries every such pair of a loop turn (a worker's busy turn answers
# many requests), with one RPUSH. On 6.2 a refused PEXPIRE's error follows the results.
ACKED_PUSH = Script(_CHECK_EXPIRE % (2, 2) + """
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[2])
local out, push = {}, {}
for i = 3, #ARGV, 2 do
  local n = #out + 1
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 0 then
    out[n] = 0
  elseif redis.call('DEL', KEYS[n + 2]) == 1 then
    out[n] = -1
  elseif #push >= room then
    out[n] = -2
  else
    push[#push + 1] = ARGV[i + 1]
    out[n] = 1
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])  -- what the processing list still holds (see ACK)
if #push > 0 then
  redis.call('RPUSH', KEYS[2], unpack(push))
  local expiry = redis.pcall('PEXPIRE', KEYS[2], ARGV[2])
  if type(expiry) == 'table' and expiry.err then out[#out + 1] = expiry.err end
end
return out
""")

# The channel layer's group_send (groups.py) -------------------------------------------------------
# A group message is one entry per receiving list, [target, expires_at_ms, payload] in msgpack
# (protocol/codec.py), target being the list's one channel or the list of its channels: built
# here, byte for byte as encode_entry builds it, from ARGV's ``tail`` (the expiry and the
# payload, packed once by the sender). Members are grouped by their list as KeySpace.channel
# names it (protocol/keys.py): ``<prefix>:{i:<owner>}`` for ``owner!suffix``, else
# ``<prefix>:{c:<name>}``.
#
# What a group_send needs of its members, per list: the key, how many members it serves, and
# their packed names, is kept in the group's lists key (KeySpace.group_lists), a sorted set of
# "<n> <list key>\n<packed names>" (score 0; ZADD and ZRANGE are commands the layer's ACL has
# anyway): built from the members by the first group_send after a change, so the others do no
# work per member. group_add and group_discard delete it after changing the members (a send
# that runs between the two still reaches the members as they were); so does a send that drops
# expired members. It never outlives the group: it gets the group's expiry when it is built,
# and a send that finds no group deletes it.
#
# KEYS[1] = group, KEYS[2] = its lists; ARGV[1] = oldest kept score ('(' exclusive), ARGV[2] =
# prefix. Leaves ``lists``: the lists key's members, none for an empty group.
_GROUP_LISTS = r"""
local function mp_str(s)
  local n = #s
  if n < 32 then return string.char(160 + n) .. s end
  if n < 256 then return '\217' .. string.char(n) .. s end
  return '\218' .. string.char(math.floor(n / 256), n % 256) .. s
end
local function mp_array(n)
  if n < 16 then return string.char(144 + n) end
  if n < 65536 then return '\220' .. string.char(math.floor(n / 256), n % 256) end
  return '\221' .. string.char(math.floor(n / 16777216), math.floor(n / 65536) % 256,
                               math.floor(n / 256) % 256, n % 256)
end
local function build(prefix, members)
  local keys, targets = {}, {}
  for _, m in ipairs(members) do
    local bang = string.find(m, '!', 1, true)
    local key
    if bang then key = prefix .. ':{i:' .. string.sub(m, 1, bang - 1) .. '}'
    else key = prefix .. ':{c:' .. m .. '}' end
    local t = targets[key]
    if t == nil then t = {}; targets[key] = t; keys[#keys + 1] = key end
    t[#t + 1] = m
  end
  local out = {}
  for k, key in ipairs(keys) do
    local t = targets[key]
    local parts = {#t .. ' ' .. key .. '\n'}
    if #t > 1 then parts[2] = mp_array(#t) end
    for _, m in ipairs(t) do parts[#parts + 1] = mp_str(m) end
    out[k] = table.concat(parts)
  end
  return out
end
local lists = {}
if redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]) == 0
   and #redis.call('ZRANGE', KEYS[1], 0, 0) == 1 then
  lists = redis.call('ZRANGE', KEYS[2], 0, -1)
end
if #lists == 0 then
  redis.call('UNLINK', KEYS[2])
  lists = build(ARGV[2], redis.call('ZRANGE', KEYS[1], 0, -1))
  if #lists > 0 then
    for first = 1, #lists, 500 do  -- (unpack() has a stack limit)
      local scored = {}
      for i = first, math.min(first + 499, #lists) do
        scored[#scored + 1] = 0; scored[#scored + 1] = lists[i]
      end
      redis.call('ZADD', KEYS[2], unpack(scored))
    end
    local ttl = redis.call('PTTL', KEYS[1])
    if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
  end
end
-- How many members, list key, and the list's packed target: its entry is '\147' (an array
-- of 3) .. target .. tail, made in one concatenation (each string made here is a copy).
local function parse(l)
  local space = string.find(l, ' ', 1, true)
  local newline = string.find(l, '\n', space + 1, true)
  return tonumber(string.sub(l, 1, space - 1)), string.sub(l, space + 1, newline - 1),
         string.sub(l, newline + 1)
end
"""
# KEYS, ARGV[1..2] as above, ARGV[3] = entry tail. Returns, per receiving list, its key, how
# many members it serves and its entry: {key, n, entry, ...}. Pushes nothing: for Redis Cluster
# and sharded servers, whose member lists live on other slots than the group (the sender pushes
# the entries through its writers), and for channel_capacity (whose patterns the sender applies).
GROUP_ENTRIES = Script(_GROUP_LISTS + """
local out = {}
for _, l in ipairs(lists) do
  local n, key, target = parse(l)
  out[#out + 1] = key; out[#out + 1] = n; out[#out + 1] = '\\147' .. target .. ARGV[3]
end
return out
""")
# The whole group_send in one call, where every list is on the group's server (one standalone
# server, or Sentinel's master): KEYS, ARGV[1..3] as above, ARGV[4] = capacity, ARGV[5] =
# ttl_ms, ARGV[6] = the largest entry. Nothing is pushed unless every entry fits (else {-1,
# size}) and, where Redis can check (7.0+), the user may LLEN, RPUSH and PEXPIRE every list.
# A list at capacity gets nothing (its members are counted as full, as ChannelFull skips them).
# Returns {members, full}; on 6.2 a refused PEXPIRE's error follows (the pushes happened).
GROUP_SEND = Script(_GROUP_LISTS + """
local counts, keys, entries, total = {}, {}, {}, 0
for i, l in ipairs(lists) do
  local n, key, target = parse(l)
  counts[i], keys[i], entries[i], total = n, key, '\\147' .. target .. ARGV[3], total + n
  if #entries[i] > tonumber(ARGV[6]) then return {-1, #entries[i]} end
  if redis.acl_check_cmd and not (redis.acl_check_cmd('RPUSH', key, 'x')
      and redis.acl_check_cmd('LLEN', key) and redis.acl_check_cmd('PEXPIRE', key, ARGV[5])) then
    return redis.error_reply('NOPERM this user has no permissions to run the llen, rpush ' ..
      'or pexpire command on ' .. key .. ' (checked first: nothing was pushed)')
  end
end
local capacity, full, refused = tonumber(ARGV[4]), 0, nil
for i, key in ipairs(keys) do
  if redis.call('LLEN', key) < capacity then
    redis.call('RPUSH', key, entries[i])
    local expiry = redis.pcall('PEXPIRE', key, ARGV[5])
    if type(expiry) == 'table' and expiry.err then refused = expiry.err end
  else
    full = full + counts[i]
  end
end
if refused then return {total, full, refused} end
return {total, full}
""")

# The route queues' (queues.py) -------------------------------------------------------------------
# KEYS: queue, processing; ARGV: how many. Returns the moved entries, oldest first.
TAKE = Script("""
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local v = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not v then break end
  out[#out + 1] = v
end
return out
""")
# KEYS: processing, then one state key per entry; ARGV: ttl_ms, then the entries. Per entry: 1
# (OURS) where the request is ours to run: still in our processing list, and not given up by the
# distributor (no state key); 0 (REAPED) where a reaper gave it back to the queue (another
# worker runs it); -1 (GIVEN_UP) where the distributor gave it up: it is gone from every list
# now, so its mark is deleted, and it never runs. What the list still holds gets ttl_ms: a list
# a BLMOVE made has none until the worker's next refresh, and would outlive a worker killed
# before it.
ACK = Script("""
local out = {}
for i = 2, #ARGV do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 0 then out[i - 1] = 0
  elseif redis.call('DEL', KEYS[i]) == 1 then out[i - 1] = -1
  else out[i - 1] = 1 end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return out
""")
#: An acknowledgement's answer per request (ACK and ACKED_PUSH alike), each with one meaning:
#: run it; a reaper gave it back to its queue (another worker runs it); the distributor gave it
#: up at its deadline (it never runs: say so, so the client gets 503 at once); acknowledged, but
#: the distributor's inbox had no room for the events (ACKED_PUSH only).
OURS, REAPED, GIVEN_UP, FULL = 1, 0, -1, -2
# KEYS: processing, queue; ARGV: ttl_ms. Moves every entry back to the queue head, keeping
# their order; a queue this recreates (it had expired) gets ttl_ms, as the edge's pushes give it.
REQUEUE = Script("""
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do n = n + 1 end
if n > 0 and redis.call('PTTL', KEYS[2]) == -1 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
return n
""")

# The distributor's (distributor/edge.py) ---------------------------------------------------------
# KEYS: queue, state; ARGV: entry, state ttl_ms. 1: withdrawn from the queue, never taken;
# 0: a worker had taken it: it is marked given up, so that worker's acknowledgement fails if it
# has not happened yet (if it has, the worker's accept is on its way).
GIVE_UP = Script("""
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then return 1 end
redis.call('SET', KEYS[2], 'c', 'PX', ARGV[2])
return 0
""")

# The route overrides' writers (transport/overrides.py) --------------------------------------------
# KEYS: the overrides' key; ARGV: what the writer read there ('' for none), the new document. 1:
# written; 0: someone wrote in between (the writer reads again). Nothing comes between the two.
WRITE_IF_UNCHANGED = Script("""
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
""")

# The readers' (reader.py) ------------------------------------------------------------------------
# Puts ARGV[2..] back at the head of KEYS[1] and extends its expiry to ARGV[1] ms, never
# shortening it (PEXPIRE GT needs Redis 7). One script, so that it happens whole or not at all:
# the permission to expire the key is checked before the push where Redis can (7.0+).
# Sent as source (``source_command``): it runs only when messages are given back, which is rare.
GIVE_BACK = Script("""
if redis.acl_check_cmd and not redis.acl_check_cmd('PEXPIRE', KEYS[1], ARGV[1]) then
  return redis.error_reply('NOPERM this user may not run PEXPIRE on ' .. KEYS[1])
end
redis.call('LPUSH', KEYS[1], unpack(ARGV, 2))
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
""")


# The preflight's (permissions.py) ---------------------------------------------------------------
# Whether the ACL lets a user run the script commands, tried without leaving a script behind:
# Redis checks the ACL first, then refuses source that does not compile (caching nothing) and
# answers NOSCRIPT for a SHA no script has.
_NO_SOURCE = "return ("
_NO_SHA = "0" * 40


def acl_probes(key: str) -> dict[str, tuple[Any, ...]]:
    """The script commands as the preflight tries them, on ``key``, by ACL name."""
    return {"evalsha": ("EVALSHA", _NO_SHA, 1, key), "eval": ("EVAL", _NO_SOURCE, 1, key),
            "script|load": ("SCRIPT", "LOAD", _NO_SOURCE)}
