"""The Lua scripts of the batched writer (kept as source here; ``writer.Script`` runs them).

A script is not undone when a command in it fails. Were PEXPIRE refused (an ACL without it)
after the RPUSH, the send would fail for a message that was delivered. So where Redis can (7.0+)
the permission is checked before anything is pushed; on 6.2 the PEXPIRE runs under pcall and
its refusal comes back beside the result, for the writer to log.
"""

from __future__ import annotations

__all__ = ["ACKED_PUSH_SCRIPT", "PUSH_SCRIPT"]

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
PUSH_SCRIPT = """
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[1])
local n = #ARGV - 2
if room < n then n = room end
if n <= 0 then return 0 end
""" + _CHECK_EXPIRE % (1, 1) + """
redis.call('RPUSH', KEYS[1], unpack(ARGV, 3, n + 2))
local expiry = redis.pcall('PEXPIRE', KEYS[1], ARGV[2])
if type(expiry) == 'table' and expiry.err then return {n, expiry.err} end
return n
"""

# KEYS[1] = processing list, KEYS[2] = list, then one state key per request; ARGV = capacity,
# ttl_ms, then pairs of (taken request, entry). For each pair, in order: acknowledge the request
# and push its entry, as one step: -1 if the request was no longer ours (given back to its
# queue, or given up by the distributor: its state key exists; nothing pushed), 0 if the list
# is full, else 1. One call carries every such pair of a loop turn (a worker's busy turn answers
# many requests), with one RPUSH. On 6.2 a refused PEXPIRE's error follows the results.
ACKED_PUSH_SCRIPT = _CHECK_EXPIRE % (2, 2) + """
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[2])
local out, push = {}, {}
for i = 3, #ARGV, 2 do
  local n = #out + 1
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 0 then
    out[n] = -1
  elseif redis.call('EXISTS', KEYS[n + 2]) == 1 then
    out[n] = -1
  elseif #push >= room then
    out[n] = 0
  else
    push[#push + 1] = ARGV[i + 1]
    out[n] = 1
  end
end
if #push > 0 then
  redis.call('RPUSH', KEYS[2], unpack(push))
  local expiry = redis.pcall('PEXPIRE', KEYS[2], ARGV[2])
  if type(expiry) == 'table' and expiry.err then out[#out + 1] = expiry.err end
end
return out
"""
