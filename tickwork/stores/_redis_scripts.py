"""The Lua scripts of :class:`~tickwork.stores.redis.RedisStore` for claims and runs.

Redis runs a script atomically, so each of these is one transaction. Keys, for
``prefix="tickwork"`` (besides ``tickwork:tasks`` and ``tickwork:run_times``):

* ``tickwork:claims``: hash, task id -> ``"<expires> <owner>"`` while a scheduler holds
  the task's due runs (between claim and write-back);
* ``tickwork:runs``: hash, run key -> the task as handed over (serialized);
* ``tickwork:run_owners``: hash, run key -> the scheduler running it;
* ``tickwork:run_leases``: sorted set, run key scored by when its record expires;
* ``tickwork:run_counts``: hash, task id -> runs in progress (for ``max_instances``).

A run key is ``"<scheduled time as repr(epoch seconds)>|<task id>"``. Times travel as
strings (``repr`` of a float, ``%.17g`` from Lua): a Lua number returned to Redis would be
truncated to an integer.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "FINISH", "NEXT_TIME", "RELEASE", "RENEW", "TAKE_OVER"]

# A claim "<expires> <owner>" is free for ARGV owner at time now when it is expired or
# already theirs.
_CLAIM_HELPERS = """
local function claim_owner(claim)
    local sep = string.find(claim, ' ', 1, true)
    return tonumber(string.sub(claim, 1, sep - 1)), string.sub(claim, sep + 1)
end
"""

# KEYS: tasks, run_times, claims. ARGV: now, limit, owner, expires, ids to skip...
# Claims up to `limit` due tasks whose claim is free; returns id, blob, id, blob, ...
ACQUIRE = (
    _CLAIM_HELPERS
    + """
local now, limit, owner = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local skip = {}
for i = 5, #ARGV do skip[ARGV[i]] = true end
local out, found, offset = {}, 0, 0
while found < limit do
    local ids = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', offset, limit)
    if #ids == 0 then break end
    offset = offset + #ids
    for _, id in ipairs(ids) do
        local free = not skip[id]
        local claim = free and redis.call('HGET', KEYS[3], id)
        if claim then
            local expires, holder = claim_owner(claim)
            free = expires < now or holder == owner
        end
        local blob = free and redis.call('HGET', KEYS[1], id)
        if blob then
            redis.call('HSET', KEYS[3], id, ARGV[4] .. ' ' .. owner)
            out[#out + 1] = id
            out[#out + 1] = blob
            found = found + 1
            if found >= limit then break end
        end
    end
end
return out
"""
)

# KEYS: tasks, run_times, claims, runs, run_owners, run_leases, run_counts.
# ARGV: owner, n, n x (id, blob, score or ""), m, m x id, expires, r,
#       r x (task id, run key, blob or "" for the blob of the task's update).
# Returns the ids whose runs must not start (claimed by another owner: nothing written;
# or a run already recorded for the same time).
RELEASE = (
    _CLAIM_HELPERS
    + """
local owner = ARGV[1]
local skipped, out, blobs = {}, {}, {}
local function skip(id)
    if not skipped[id] then
        skipped[id] = true
        out[#out + 1] = id
    end
end
local function held_by_other(id)
    local claim = redis.call('HGET', KEYS[3], id)
    if not claim then return false end
    local _, holder = claim_owner(claim)
    return holder ~= owner
end
local i = 3
for _ = 1, tonumber(ARGV[2]) do
    local id, blob, score = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    if held_by_other(id) then
        skip(id)
    else
        blobs[id] = blob
        redis.call('HDEL', KEYS[3], id)
        if redis.call('HEXISTS', KEYS[1], id) == 1 then
            redis.call('HSET', KEYS[1], id, blob)
            if score == '' then
                redis.call('ZREM', KEYS[2], id)
            else
                redis.call('ZADD', KEYS[2], score, id)
            end
        end
    end
end
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
    local id = ARGV[i]
    i = i + 1
    if held_by_other(id) then
        skip(id)
    else
        redis.call('HDEL', KEYS[1], id)
        redis.call('ZREM', KEYS[2], id)
        redis.call('HDEL', KEYS[3], id)
    end
end
local expires = ARGV[i]
local runs = {}
for _ = 1, tonumber(ARGV[i + 1]) do
    local j = i + 2 + 3 * #runs
    runs[#runs + 1] = {ARGV[j], ARGV[j + 1], ARGV[j + 2]}
end
for _, run in ipairs(runs) do
    if redis.call('HEXISTS', KEYS[5], run[2]) == 1 then skip(run[1]) end
end
for _, run in ipairs(runs) do
    local id, key, blob = run[1], run[2], run[3]
    if not skipped[id] then
        if blob == '' then blob = blobs[id] end
        redis.call('HSET', KEYS[4], key, blob)
        redis.call('HSET', KEYS[5], key, owner)
        redis.call('ZADD', KEYS[6], expires, key)
        redis.call('HINCRBY', KEYS[7], id, 1)
    end
end
return out
"""
)

# KEYS: run_owners, run_leases. ARGV: owner, expires, run keys... Returns how many of
# the records were still the owner's (and are renewed).
RENEW = """
local renewed = 0
for i = 3, #ARGV do
    if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[i])
        renewed = renewed + 1
    end
end
return renewed
"""

# KEYS: runs, run_owners, run_leases, run_counts. ARGV: owner, (run key, task id)...
FINISH = """
for i = 2, #ARGV, 2 do
    local key, id = ARGV[i], ARGV[i + 1]
    if redis.call('HGET', KEYS[2], key) == ARGV[1] then
        redis.call('HDEL', KEYS[1], key)
        redis.call('HDEL', KEYS[2], key)
        redis.call('ZREM', KEYS[3], key)
        if redis.call('HINCRBY', KEYS[4], id, -1) <= 0 then redis.call('HDEL', KEYS[4], id) end
    end
end
return 0
"""

# KEYS: runs, run_owners, run_leases. ARGV: now, limit, owner, expires.
# Takes over records that expired before `now`; returns key, previous owner, blob, ...
TAKE_OVER = """
local keys = redis.call('ZRANGE', KEYS[3], '-inf', '(' .. ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
local out = {}
for _, key in ipairs(keys) do
    local previous = redis.call('HGET', KEYS[2], key) or ''
    local blob = redis.call('HGET', KEYS[1], key)
    redis.call('HSET', KEYS[2], key, ARGV[3])
    redis.call('ZADD', KEYS[3], ARGV[4], key)
    if blob then
        out[#out + 1] = key
        out[#out + 1] = previous
        out[#out + 1] = blob
    end
end
return out
"""

# KEYS: run_times, claims. ARGV: ids to skip (tasks that cannot load)...
# The earliest time a task needs attention: its next run time, or when the claim of the
# scheduler processing it expires, whichever is later. Returns a string, or false.
NEXT_TIME = (
    _CLAIM_HELPERS
    + """
local skip = {}
for i = 1, #ARGV do skip[ARGV[i]] = true end
local best = nil
local offset = 0
while true do
    local page = redis.call('ZRANGE', KEYS[1], offset, offset + 99, 'WITHSCORES')
    if #page == 0 then break end
    for j = 1, #page, 2 do
        local id, when = page[j], tonumber(page[j + 1])
        if best ~= nil and when >= best then return string.format('%.17g', best) end
        if not skip[id] then
            local claim = redis.call('HGET', KEYS[2], id)
            if claim then
                local expires = claim_owner(claim)
                if expires > when then when = expires end
            end
            if best == nil or when < best then best = when end
        end
    end
    offset = offset + 100
end
if best == nil then return false end
return string.format('%.17g', best)
"""
)
