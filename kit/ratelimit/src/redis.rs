//! Shared buckets in Redis: GCRA in one Lua script, one round trip per decision, Redis's own
//! clock (so instances with skewed clocks agree).

use std::time::Duration;

use gochat_cache::{Cache, Reply};

use crate::{Decision, Rule};

/// KEYS[1]: the bucket. ARGV: interval µs, burst, n. Returns {allowed, remaining, retry µs}.
/// The stored value is the bucket's theoretical arrival time (µs); it expires when full.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local capacity = interval * burst
local new_tat = tat + interval * n
local allow_at = new_tat - capacity
if allow_at > now then
  return {0, 0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((capacity - (new_tat - now)) / interval), 0}
";

/// The script's SHA1, as `SCRIPT LOAD` returns it and `EVALSHA` takes it.
pub(crate) async fn load(cache: &Cache) -> Result<String, gochat_cache::Error> {
    cache.script_load(GCRA).await
}

/// One decision. `EVALSHA` sends 40 bytes instead of the script; a server that lost its
/// script cache (a restart, another cluster node) answers `NOSCRIPT`, and `EVAL` sends the
/// script once more, which also caches it there.
pub(crate) async fn allow(
    cache: &Cache,
    sha: &str,
    name: &str,
    rule: Rule,
    key: &str,
    n: u32,
) -> Result<Decision, gochat_cache::Error> {
    let bucket = format!("ratelimit:{name}:{key}");
    let interval = u64::try_from(rule.interval().as_micros()).unwrap_or(u64::MAX);
    let args = [interval.to_string(), rule.burst.to_string(), n.to_string()];
    let args: Vec<&[u8]> = args.iter().map(String::as_bytes).collect();
    let reply = match cache.evalsha(sha, &[&bucket], &args).await {
        Err(e) if e.to_string().contains("NOSCRIPT") => cache.eval(GCRA, &[&bucket], &args).await?,
        other => other?,
    };
    let Reply::Array(items) = reply else {
        return Err(gochat_cache::Error::Backend(format!(
            "the rate-limit script returned {reply:?}"
        )));
    };
    let int = |i: usize| match items.get(i) {
        Some(Reply::Int(v)) => Ok(*v),
        other => Err(gochat_cache::Error::Backend(format!(
            "the rate-limit script returned {other:?} at {i}"
        ))),
    };
    let (allowed, remaining, retry) = (int(0)?, int(1)?, int(2)?);
    Ok(if allowed == 1 {
        Decision::allowed(u32::try_from(remaining.max(0)).unwrap_or(0), false)
    } else {
        Decision::denied(
            Duration::from_micros(u64::try_from(retry.max(0)).unwrap_or(0)),
            false,
        )
    })
}
