//! The Lua scripts of the Redis backend: each step of group membership that must be atomic
//! (a lease checked and a commit written, a lease taken and the offsets read) is one script.
//!
//! Offsets are stream entry ids `0-N`: the record at offset `o` has id `0-(o+1)`, so the end
//! of a partition (the offset the next record gets) is the sequence of its last id.

/// Renews membership and the caller's leases; drops members whose membership expired.
///
/// KEYS: the group's member set, then the lease of each partition the caller owns.
/// ARGV: member id, session timeout (ms). Returns `{members, held}`: the live members and,
/// per lease, 1 if the caller still holds it (renewed) or 0 if it lost it.
pub(super) const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl * 10)
local held = {}
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ttl)
    held[#held + 1] = 1
  else
    held[#held + 1] = 0
  end
end
return {redis.call('ZRANGE', KEYS[1], 0, -1), held}
";

/// Takes free partitions and says where to start reading each.
///
/// KEYS: per partition its lease, its topic's offsets hash and its stream. ARGV: member id,
/// session timeout (ms), then per partition its field in the offsets hash. Returns per
/// partition `{taken, committed (-1: none), end}`.
pub(super) const CLAIM: &str = r"
local out = {}
for i = 1, #KEYS, 3 do
  local j = (i + 2) / 3
  local mine = redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2])
  if not mine and redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    mine = true
  end
  if mine then
    local committed = redis.call('HGET', KEYS[i + 1], ARGV[j + 2])
    local last = redis.call('XREVRANGE', KEYS[i + 2], '+', '-', 'COUNT', 1)
    local stream_end = 0
    if #last > 0 then
      stream_end = tonumber(string.match(last[1][1], '%-(%d+)$'))
    end
    out[j] = {1, committed and tonumber(committed) or -1, stream_end}
  else
    out[j] = {0, -1, 0}
  end
end
return out
";

/// Commits offsets of the partitions the caller still holds (a member that lost a lease
/// cannot move its successor's offset), then releases leases when asked.
///
/// KEYS: the group's member set, then per partition its lease and its topic's offsets hash.
/// ARGV: member id, `release` (1: drop these leases), `leave` (1: leave the group), then per
/// partition its field and the offset to commit (empty: nothing to commit). Returns how many
/// commits were refused.
pub(super) const COMMIT: &str = r"
local refused = 0
for i = 2, #KEYS, 2 do
  local j = i / 2
  local field, offset = ARGV[2 * j + 2], ARGV[2 * j + 3]
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    if offset ~= '' then
      redis.call('HSET', KEYS[i + 1], field, offset)
    end
    if ARGV[2] == '1' then
      redis.call('DEL', KEYS[i])
    end
  elseif offset ~= '' then
    refused = refused + 1
  end
end
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return refused
";

/// What the caller's partitions hold beyond their committed offsets.
///
/// KEYS: per partition its stream and its topic's offsets hash. ARGV: per partition its
/// field and the offset counted from when nothing is committed. Returns the sum.
pub(super) const LAG: &str = r"
local lag = 0
for i = 1, #KEYS, 2 do
  local j = (i + 1) / 2
  local last = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
  local stream_end = 0
  if #last > 0 then
    stream_end = tonumber(string.match(last[1][1], '%-(%d+)$'))
  end
  local committed = redis.call('HGET', KEYS[i + 1], ARGV[2 * j - 1])
  committed = committed and tonumber(committed) or tonumber(ARGV[2 * j])
  if stream_end > committed then
    lag = lag + stream_end - committed
  end
end
return lag
";
