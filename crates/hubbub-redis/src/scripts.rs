//! The Lua scripts: each runs atomically in Redis, which is what makes
//! numbering, queueing and attaching safe between nodes. Times in
//! presence come from Redis's own clock (`TIME`), so nodes with skewed
//! clocks agree on what has expired.

use std::sync::LazyLock;

use redis::Script;

/// `now_ms()`: milliseconds by Redis's clock, for every script that keeps
/// or expires something.
const NOW_MS: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"#;

/// A script that may call `now_ms()`.
fn with_clock(body: &str) -> Script {
    Script::new(&format!("{NOW_MS}{body}"))
}

/// For the room scripts, whose KEYS are always the room's settings hash,
/// its channel's presence hash and expiry set: `live(now)` drops expired
/// members and counts the rest; `stale(n)` says whether the room is one
/// made by joining whose members are all gone (a dead node's), which
/// counts as no room (and is removed).
const ROOM: &str = r#"
local function live(now)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
  for _, c in ipairs(gone) do redis.call('HDEL', KEYS[2], c) end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
  return redis.call('HLEN', KEYS[2])
end
local function stale(n)
  if n == 0 and redis.call('HGET', KEYS[1], 'j') == '1' then
    redis.call('DEL', KEYS[1])
    return true
  end
  return false
end
"#;

/// A room script: the clock and the room helpers.
fn room_script(body: &str) -> Script {
    with_clock(&format!("{ROOM}{body}"))
}

/// Creates a room unless one exists. ARGV: settings JSON, capacity.
/// Returns its `created_at`, or nil.
pub(crate) static ROOM_CREATE: LazyLock<Script> = LazyLock::new(|| {
    room_script(
        r#"
local now = now_ms()
if redis.call('EXISTS', KEYS[1]) == 1 and not stale(live(now)) then return nil end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'c', now, 'cap', ARGV[2], 'j', '0')
return now
"#,
    )
});

/// A room as it is. Returns `{settings JSON, created_at, members}`, or nil.
pub(crate) static ROOM_GET: LazyLock<Script> = LazyLock::new(|| {
    room_script(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local n = live(now_ms())
if stale(n) then return nil end
return {redis.call('HGET', KEYS[1], 's'), redis.call('HGET', KEYS[1], 'c'), n}
"#,
    )
});

/// Takes a place and enters presence in one step, making the room first
/// where asked. ARGV: connection id, entry JSON, ttl ms, capacity of a
/// room to make (`''`: make none), that room's settings JSON. Returns
/// `{'unknown'}`, `{'full', capacity}` or `{'in', new (0/1), settings
/// JSON, created_at}`.
pub(crate) static ROOM_ADMIT: LazyLock<Script> = LazyLock::new(|| {
    room_script(
        r#"
local now = now_ms()
local n = live(now)
if redis.call('EXISTS', KEYS[1]) == 0 or stale(n) then
  if ARGV[4] == '' then return {'unknown'} end
  redis.call('HSET', KEYS[1], 's', ARGV[5], 'c', now, 'cap', ARGV[4], 'j', '1')
end
local new = 1
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  new = 0
else
  local cap = tonumber(redis.call('HGET', KEYS[1], 'cap'))
  if n >= cap then return {'full', cap} end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return {'in', new, redis.call('HGET', KEYS[1], 's'), redis.call('HGET', KEYS[1], 'c')}
"#,
    )
});

/// Gives a place back; a room made by joining goes with its last member.
/// ARGV: connection id.
pub(crate) static ROOM_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    room_script(
        r#"
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
stale(live(now_ms()))
return 1
"#,
    )
});

/// Deletes a room and its members. Returns `{settings JSON, created_at}`,
/// or nil when there was none.
pub(crate) static ROOM_DELETE: LazyLock<Script> = LazyLock::new(|| {
    room_script(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 or stale(live(now_ms())) then return nil end
local r = {redis.call('HGET', KEYS[1], 's'), redis.call('HGET', KEYS[1], 'c')}
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return r
"#,
    )
});

/// Numbers an event and keeps it: the next offset in the channel's epoch
/// (a new epoch, and an emptied list, when the channel's metadata is gone,
/// so offsets are never reused), stamped with when it was kept (Redis's
/// clock: each event is held `ttl` from then), appended, trimmed to
/// `size`, and published in the same step, so pub/sub order is offset
/// order.
///
/// KEYS: history list, meta hash. ARGV: body, size, ttl ms, new epoch,
/// pub/sub channel (`''`: kept, not published). Returns `{offset, epoch}`.
pub(crate) static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    with_clock(
        r#"
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch)
end
local off = redis.call('HINCRBY', KEYS[2], 'o', 1)
redis.call('HSET', KEYS[2], 't', ARGV[3])
local now = now_ms()
local msg = off .. ' ' .. epoch .. ' ' .. now .. ' ' .. ARGV[1]
redis.call('RPUSH', KEYS[1], msg)
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], msg) end
return {off, epoch}
"#,
    )
});

/// Gives a channel an epoch at offset 0 unless it has one.
///
/// KEYS: history list, meta hash. ARGV: new epoch, ttl ms.
pub(crate) static OPEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HSETNX', KEYS[2], 'e', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'o', 0, 't', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
"#,
    )
});

/// Reads a channel's position and a slice of its events. The list holds
/// offsets `top - len + 1 ..= top`, contiguous, so `since` is an index.
///
/// KEYS: history list, meta hash. ARGV: since (-1: the newest `limit`),
/// limit. Returns `{epoch, top, ttl ms, first held, {lines}, now}`
/// (`now` by Redis's clock); epoch `''` when the channel has no history.
pub(crate) static READ: LazyLock<Script> = LazyLock::new(|| {
    with_clock(
        r#"
local now = now_ms()
local meta = redis.call('HMGET', KEYS[2], 'e', 'o', 't')
if not meta[1] then return {'', 0, 0, 1, {}, now} end
local top = tonumber(meta[2]) or 0
local ttl = tonumber(meta[3]) or 0
local len = redis.call('LLEN', KEYS[1])
local first = top - len + 1
local since = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local items = {}
if limit > 0 then
  if since < 0 then
    items = redis.call('LRANGE', KEYS[1], -limit, -1)
  else
    local start = since + 1 - first
    if start < 0 then start = 0 end
    if start < len then
      items = redis.call('LRANGE', KEYS[1], start, start + limit - 1)
    end
  end
end
return {meta[1], top, ttl, first, items, now}
"#,
    )
});

/// Adds (or refreshes) presence entries, each expiring `ttl` from now by
/// Redis's clock.
///
/// KEYS: entries hash, expiry sorted set. ARGV: ttl ms, then pairs of
/// connection id and entry JSON.
pub(crate) static PRESENCE_ADD: LazyLock<Script> = LazyLock::new(|| {
    with_clock(
        r#"
local exp = now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], exp, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
"#,
    )
});

/// Removes one presence entry.
///
/// KEYS: entries hash, expiry sorted set. ARGV: connection id.
pub(crate) static PRESENCE_REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"#,
    )
});

/// Drops expired presence entries, then lists the rest (`ARGV[1] ==
/// 'list'`) or counts clients and distinct users (`'stats'`).
///
/// KEYS: entries hash, expiry sorted set.
pub(crate) static PRESENCE_READ: LazyLock<Script> = LazyLock::new(|| {
    with_clock(
        r#"
local now = now_ms()
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, c in ipairs(gone) do redis.call('HDEL', KEYS[1], c) end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
local vals = redis.call('HVALS', KEYS[1])
if ARGV[1] == 'list' then return vals end
local users = {}
local n = 0
for _, v in ipairs(vals) do
  local ok, e = pcall(cjson.decode, v)
  if ok and type(e) == 'table' and type(e.user_id) == 'string' and not users[e.user_id] then
    users[e.user_id] = true
    n = n + 1
  end
end
return {#vals, n}
"#,
    )
});

/// Sends an event to a user: to the inbox of every live node where the
/// user is connected, else into the user's queue (bounded, oldest
/// dropped). A node counts as live while its `alive` key exists and its
/// inbox has a subscriber; a dead node's registration is dropped here.
///
/// KEYS: online hash, queue list. ARGV: line, queue size, queue ttl ms,
/// alive-key prefix, inbox prefix, `'1'` to queue without trying live
/// delivery. Returns `{connections, queued (0/1), dropped}`. Queued lines
/// start with when they were queued (ms, Redis's clock).
pub(crate) static USER_SEND: LazyLock<Script> = LazyLock::new(|| {
    with_clock(
        r#"
local conns = 0
if ARGV[6] ~= '1' then
  local online = redis.call('HGETALL', KEYS[1])
  for i = 1, #online, 2 do
    local node = online[i]
    local n = tonumber(online[i + 1]) or 0
    if n > 0 and redis.call('EXISTS', ARGV[4] .. node) == 1 then
      -- A node between links receives nothing: the event is queued then.
      if redis.call('PUBLISH', ARGV[5] .. node, ARGV[1]) > 0 then
        conns = conns + n
      end
    else
      redis.call('HDEL', KEYS[1], node)
    end
  end
end
if conns > 0 then return {conns, 0, 0} end
local size = tonumber(ARGV[2])
if size <= 0 then return {0, 0, 0} end
local now = now_ms()
local len = redis.call('RPUSH', KEYS[2], now .. ' ' .. ARGV[1])
local dropped = 0
if len > size then
  dropped = len - size
  redis.call('LTRIM', KEYS[2], -size, -1)
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {0, 1, dropped}
"#,
    )
});

/// Registers a node's connections of a user and takes the user's queue in
/// one step: a concurrent send either sees the registration (and goes to
/// the node's inbox) or is in the queue taken here.
///
/// KEYS: online hash, queue list, the node's alive key. ARGV: node id,
/// the node's connection count for the user, online ttl ms, alive ttl ms.
/// Returns `{queued lines, now}`.
pub(crate) static USER_ATTACH: LazyLock<Script> = LazyLock::new(|| {
    with_clock(
        r#"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
local items = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
return {items, now_ms()}
"#,
    )
});
