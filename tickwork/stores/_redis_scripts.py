"""The Lua scripts of :class:`~tickwork.stores.redis.RedisStore`.

Redis runs a script atomically, so each of these is one transaction. Keys, for
``prefix="tickwork"``:

* ``tickwork:tasks``: hash, task id -> serialized task;
* ``tickwork:run_times``: sorted set, task id scored by its next run time;
* ``tickwork:claims``: hash, task id -> ``"<expires> <owner>"`` while a scheduler holds
  the task's due runs (between claim and write-back);
* ``tickwork:runs``: hash, run key -> the task as handed over (serialized);
* ``tickwork:run_owners``: hash, run key -> the scheduler running it;
* ``tickwork:run_leases``: sorted set, run key scored by when its record expires;
* ``tickwork:run_counts``: hash, task id -> runs in progress (for ``max_instances``);
* ``tickwork:run_attempts``: hash, run key -> the attempt in progress or to make (schema
  version 3; a record without one is a first attempt);
* ``tickwork:run_cancels``: set of the run keys whose cancellation was requested (schema
  version 3), read by their owner at each renewal;
* ``tickwork:leader`` and ``tickwork:leader_only``: the leader's term and the ids of
  leader-only tasks (schema version 4, see :mod:`tickwork.stores._redis_leader`).

A **pending retry** is a run record whose owner is ``""``: nobody runs it, its score in
``run_leases`` is when it is due, and it is not counted in ``run_counts``.
:data:`TAKE_OVER` hands it out when due, like an expired record (and counts it again).

A run key is ``"<scheduled time as repr(epoch seconds)>|<task id>"``. Times travel as
strings (``repr`` of a float, ``%.17g`` from Lua): a Lua number returned to Redis would be
truncated to an integer.

Bad data is skipped and repaired, never an error: a script that failed on it would fail
on every pass and stop the store, and an entry reported but never processed would wake
the scheduler in a busy loop. What the scripts meet and what they do:

* a run-time entry whose task is missing ("dangling"): removed, with its claim, in the
  same script that found the task missing;
* a claim that does not read as ``"<expires> <owner>"`` with a time Python can represent
  and an owner: free (as if expired), so it is overwritten or deleted;
* a run time Python cannot represent (``inf``, 1e300): left out of the next run time; the
  store rewrites it from the task itself (:data:`RESCORE`);
* a run count that is not an integer: reset before it is changed;
* a run record whose key does not read as ``"<time>|<id>"``: dropped; one whose task copy
  is missing: dropped, and its run uncounted (a pending retry was not counted);
* an attempt that is not a positive integer: read as 1.

Scripts that can meet such data return ``{answer, notes}``: ``notes`` is a flat list of
``kind, subject, value`` triples the store logs (once each).
"""

from __future__ import annotations

from tickwork.stores._redis_tags import tag_helpers

__all__ = [
    "ACQUIRE",
    "CANCEL",
    "CANCEL_REQUESTS",
    "DUE",
    "FINISH",
    "NEXT_RETRY",
    "NEXT_TIME",
    "RELEASE",
    "RENEW",
    "RESCORE",
    "RETRY",
    "TAKE_OVER",
    "TIME_RANGE",
    "UNTAKE",
]

#: The epoch seconds Python's datetime can represent (years 1 to 9999, UTC).
TIME_RANGE = (-62135596800.0, 253402300799.0)

# Shared by the scripts below: recording what was repaired, reading claims and times.
_HELPERS = f"""
local notes = {{}}
local function note(kind, subject, value)
    notes[#notes + 1] = kind
    notes[#notes + 1] = subject
    notes[#notes + 1] = value or ''
end
local function valid_time(t)
    return t ~= nil and t >= {TIME_RANGE[0]:.0f} and t <= {TIME_RANGE[1]:.0f}
end
-- A claim "<expires> <owner>": expires, owner; nil when it does not read so.
local function parse_claim(claim)
    local sep = string.find(claim, ' ', 1, true)
    if not sep then return nil end
    local expires, holder = tonumber(string.sub(claim, 1, sep - 1)), string.sub(claim, sep + 1)
    if not valid_time(expires) or holder == '' then return nil end
    return expires, holder
end
-- HINCRBY, after resetting a count that is not an integer (HINCRBY would fail on it).
local function add_count(key, id, delta)
    local count = redis.call('HGET', key, id)
    if count and not (string.match(count, '^%-?%d+$') and #count < 19) then
        note('count', id, count)
        redis.call('HDEL', key, id)
    end
    local total = redis.call('HINCRBY', key, id, delta)
    if total <= 0 then redis.call('HDEL', key, id) end
end
"""

# Run records: KEYS[1] runs, KEYS[2] run_owners, KEYS[3] run_leases, KEYS[4] run_counts,
# KEYS[5] run_attempts, KEYS[6] run_cancels.
_RECORDS = """
-- Delete every trace of a run record (not its count: the caller knows if it had one).
local function drop(key)
    redis.call('HDEL', KEYS[1], key)
    redis.call('HDEL', KEYS[2], key)
    redis.call('ZREM', KEYS[3], key)
    redis.call('HDEL', KEYS[5], key)
    redis.call('SREM', KEYS[6], key)
end
-- The attempt a record holds: 1 when it has none (written before schema version 3).
local function attempt_of(key)
    local found = redis.call('HGET', KEYS[5], key)
    local number = found and tonumber(found)
    if found and not (number and number >= 1 and number == math.floor(number)) then
        note('attempt', key, found)
        number = nil
    end
    return number or 1
end
-- The task id of a run key "<time>|<id>" (nil when it does not read so).
local function id_of(key)
    local sep = string.find(key, '|', 1, true)
    if not sep or sep == #key then return nil end
    return string.sub(key, sep + 1)
end
"""

# Claims: KEYS[1] tasks, KEYS[2] run_times, KEYS[3] claims.
_CLAIMS = """
-- Remove a run-time entry whose task is missing, with its claim.
local function drop_dangling(id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    note('dangling', id)
end
-- Is the task's claim free for `owner` at `now`: none, expired, theirs, or malformed?
local function claim_free(id, now, owner)
    local claim = redis.call('HGET', KEYS[3], id)
    if not claim then return true end
    local expires, holder = parse_claim(claim)
    if not expires then
        note('claim', id, claim)
        return true
    end
    return expires < now or holder == owner
end
"""

# KEYS: tasks, run_times, claims. ARGV: max score, count (-1: all).
# Returns {id, blob, id, blob, ... earliest first; notes}.
DUE = (
    _HELPERS
    + _CLAIMS
    + """
local limit = tonumber(ARGV[2])
local out, offset = {}, 0
while limit < 0 or #out < 2 * limit do
    local ids = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', offset, limit)
    if #ids == 0 then break end
    offset = offset + #ids
    for _, id in ipairs(ids) do
        local blob = redis.call('HGET', KEYS[1], id)
        if blob then
            out[#out + 1] = id
            out[#out + 1] = blob
            if #out == 2 * limit then break end
        else
            drop_dangling(id)
            offset = offset - 1
        end
    end
    if limit < 0 then break end
end
return {out, notes}
"""
)

# KEYS: tasks, run_times, claims, leader-only set, leader term. ARGV: now, limit, owner,
# expires, the caller's term ("<generation> <owner>", or ""), ids to skip...
# Claims up to `limit` due tasks whose claim is free, leader-only ones only while the
# caller's term is the running one (fencing); returns {id, blob, ...; notes}.
ACQUIRE = (
    _HELPERS
    + _CLAIMS
    + """
local now, limit, owner = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local leading = ARGV[5] ~= '' and redis.call('GET', KEYS[5]) == ARGV[5]
local skip = {}
for i = 6, #ARGV do skip[ARGV[i]] = true end
local out, found, offset = {}, 0, 0
while found < limit do
    local ids = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', offset, limit)
    if #ids == 0 then break end
    offset = offset + #ids
    for _, id in ipairs(ids) do
        if not skip[id] and (leading or redis.call('SISMEMBER', KEYS[4], id) == 0)
                and claim_free(id, now, owner) then
            local blob = redis.call('HGET', KEYS[1], id)
            if blob then
                redis.call('HSET', KEYS[3], id, ARGV[4] .. ' ' .. owner)
                out[#out + 1] = id
                out[#out + 1] = blob
                found = found + 1
                if found >= limit then break end
            else
                drop_dangling(id)
                offset = offset - 1  -- the entries after it moved up by one
            end
        end
    end
end
return {out, notes}
"""
)

# KEYS: tasks, run_times, claims, runs, run_owners, run_leases, run_counts,
# run_attempts, run_cancels, tag index, task_tags. ARGV: owner, n, n x (id, blob, score or
# "", tags joined by NUL, blob as claimed or ""), m, m x (id, blob as claimed or ""),
# expires, r, r x (task id, run key, blob or "" for the blob of the task's update).
# Returns {ids whose runs must not start (claimed by another owner: nothing written; or
# a run already recorded for the same time); notes; ids changed since their claim (not
# written, still claimed: the caller merges them, see tickwork/stores/_claimed.py)}. The tag index follows what is
# written (see tickwork/stores/_redis_tags.py): a written task whose index entries say
# other tags (changed while the task was claimed) is noted ('tags').
RELEASE = (
    _HELPERS
    + tag_helpers("KEYS[10]", "KEYS[11]")
    + """
local owner = ARGV[1]
local skipped, out, blobs, changed = {}, {}, {}, {}
-- Does the stored record differ from the bytes claimed ('' : not known, write anyway)?
local function changed_since_claim(id, was)
    if was == '' then return false end
    local now = redis.call('HGET', KEYS[1], id)
    return now ~= false and now ~= was
end
local function skip(id)
    if not skipped[id] then
        skipped[id] = true
        out[#out + 1] = id
    end
end
-- A malformed claim is nobody's: the caller deletes it with the others.
local function held_by_other(id)
    local claim = redis.call('HGET', KEYS[3], id)
    if not claim then return false end
    local _, holder = parse_claim(claim)
    if not holder then
        note('claim', id, claim)
        return false
    end
    return holder ~= owner
end
local i = 3
for _ = 1, tonumber(ARGV[2]) do
    local id, blob, score, tags, was = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    i = i + 5
    if held_by_other(id) then
        skip(id)
    elseif changed_since_claim(id, was) then
        blobs[id] = blob
        changed[#changed + 1] = id
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
            local indexed = redis.call('HGET', KEYS[11], id) or ''
            if indexed ~= tags then
                note('tags', id, (string.gsub(indexed, '%z', ', ')))
                tag(id, tags)
            end
        end
    end
end
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
    local id, was = ARGV[i], ARGV[i + 1]
    i = i + 2
    if held_by_other(id) then
        skip(id)
    elseif changed_since_claim(id, was) then
        changed[#changed + 1] = id
    else
        redis.call('HDEL', KEYS[1], id)
        redis.call('ZREM', KEYS[2], id)
        redis.call('HDEL', KEYS[3], id)
        untag(id)
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
        redis.call('HDEL', KEYS[8], key)  -- (a first attempt, not cancelled)
        redis.call('SREM', KEYS[9], key)
        add_count(KEYS[7], id, 1)
    end
end
return {out, notes, changed}
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

# KEYS: the run keys (see _RECORDS). ARGV: owner, (run key, task id)... Returns {0; notes}.
FINISH = (
    _HELPERS
    + _RECORDS
    + """
for i = 2, #ARGV, 2 do
    local key, id = ARGV[i], ARGV[i + 1]
    if redis.call('HGET', KEYS[2], key) == ARGV[1] then
        drop(key)
        add_count(KEYS[4], id, -1)
    end
end
return {0, notes}
"""
)

# KEYS: the run keys, the leader-only set, the leader's term. ARGV: now, limit, owner,
# expires, the caller's term ("" for none).
# Takes over records that expired before `now` and pending retries due at `now`; those of
# a leader-only task only while the caller's term is the running one (checked here, in
# the same script: a member that does not lead leaves them to the leader). Returns
# {key, previous owner ('' for a retry), blob, attempt, due ('' unless a retry), ...;
# notes}. An abandoned record's attempt goes up by one (the attempt made now); a retry
# becomes a run in progress again, and is counted. Records that can never run again are
# dropped (see the module docstring).
TAKE_OVER = (
    _HELPERS
    + _RECORDS
    + """
local now = tonumber(ARGV[1])
local leading = ARGV[5] ~= '' and redis.call('GET', KEYS[8]) == ARGV[5]
local found = redis.call(
    'ZRANGE', KEYS[3], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2], 'WITHSCORES')
local out = {}
for j = 1, #found, 2 do
    local key, score = found[j], found[j + 1]
    local sep = string.find(key, '|', 1, true)
    local when = sep and tonumber(string.sub(key, 1, sep - 1))
    local blob = redis.call('HGET', KEYS[1], key)
    local previous = redis.call('HGET', KEYS[2], key) or ''
    if not valid_time(when) or sep == #key then
        -- Not a key tickwork writes, so its run was never counted either.
        drop(key)
        note('run', key, 'malformed')
    elseif not blob then
        drop(key)
        if previous ~= '' then add_count(KEYS[4], string.sub(key, sep + 1), -1) end
        note('run', key, 'dangling')
    elseif previous ~= '' and tonumber(score) >= now then
        -- in progress, its lease ends right now: not expired yet
    elseif not leading and redis.call('SISMEMBER', KEYS[7], string.sub(key, sep + 1)) == 1 then
        -- a leader-only task's run or retry: the leader's to take over
    else
        local attempt, due = attempt_of(key), ''
        if previous == '' then
            due = score
            add_count(KEYS[4], string.sub(key, sep + 1), 1)
        else
            attempt = attempt + 1
        end
        redis.call('HSET', KEYS[5], key, attempt)
        redis.call('HSET', KEYS[2], key, ARGV[3])
        redis.call('ZADD', KEYS[3], ARGV[4], key)
        out[#out + 1] = key
        out[#out + 1] = previous
        out[#out + 1] = blob
        out[#out + 1] = tostring(attempt)
        out[#out + 1] = due
    end
end
return {out, notes}
"""
)

# KEYS: the run keys. ARGV: owner, (run key, previous owner, attempt held before)...
# Undoes TAKE_OVER's counting for records whose task could not be loaded (they are not
# run): a retry stays a pending retry (due again at its new score), an abandoned record
# keeps the attempt it had. Records no longer `owner`'s are left alone. Returns {0; notes}.
UNTAKE = (
    _HELPERS
    + _RECORDS
    + """
for i = 2, #ARGV, 3 do
    local key, previous, attempt = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    if redis.call('HGET', KEYS[2], key) == ARGV[1] then
        redis.call('HSET', KEYS[5], key, attempt)
        if previous == '' then
            redis.call('HSET', KEYS[2], key, '')
            add_count(KEYS[4], id_of(key), -1)
        end
    end
end
return {0, notes}
"""
)

# KEYS: the run keys. ARGV: owner, then (run key, task id, attempt, due, blob)...
# Each of `owner`'s records becomes a pending retry (owner '', scored by its due time,
# uncounted); a run without a record gets one; a record another scheduler holds, or
# already a retry, is left alone. A record of `owner` marked for cancellation is deleted
# instead. Returns {keys deleted so; notes}.
RETRY = (
    _HELPERS
    + _RECORDS
    + """
local cancelled = {}
for i = 2, #ARGV, 5 do
    local key, id, attempt, due, blob = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local holder = redis.call('HGET', KEYS[2], key)
    if holder == ARGV[1] then
        add_count(KEYS[4], id, -1)
        if redis.call('SISMEMBER', KEYS[6], key) == 1 then
            drop(key)
            cancelled[#cancelled + 1] = key
        else
            redis.call('HSET', KEYS[2], key, '')
            redis.call('ZADD', KEYS[3], due, key)
            redis.call('HSET', KEYS[5], key, attempt)
        end
    elseif not holder then
        redis.call('HSET', KEYS[1], key, blob)
        redis.call('HSET', KEYS[2], key, '')
        redis.call('ZADD', KEYS[3], due, key)
        redis.call('HSET', KEYS[5], key, attempt)
        redis.call('SREM', KEYS[6], key)
    end
end
return {cancelled, notes}
"""
)

# KEYS: the run keys. ARGV: task id, run key ('' for every run of the task).
# Deletes the task's pending retries and marks its records in progress; returns how
# many were deleted plus how many were newly marked. Without a run key it reads every
# record's key (the records are the runs in progress and the retries: few).
CANCEL = (
    _HELPERS
    + _RECORDS
    + """
local keys = {}
if ARGV[2] ~= '' then
    keys[1] = ARGV[2]
else
    for _, key in ipairs(redis.call('HKEYS', KEYS[2])) do
        if id_of(key) == ARGV[1] then keys[#keys + 1] = key end
    end
end
local changed = 0
for _, key in ipairs(keys) do
    local holder = redis.call('HGET', KEYS[2], key)
    if holder == '' then
        drop(key)
        changed = changed + 1
    elseif holder then
        changed = changed + redis.call('SADD', KEYS[6], key)
    end
end
return changed
"""
)

# KEYS: run_owners, run_cancels. ARGV: owner. Returns the keys of `owner`'s records
# whose cancellation was requested; marks of records gone meanwhile are removed.
CANCEL_REQUESTS = """
local out = {}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local holder = redis.call('HGET', KEYS[1], key)
    if holder == ARGV[1] then
        out[#out + 1] = key
    elseif not holder then
        redis.call('SREM', KEYS[2], key)
    end
end
return out
"""

# KEYS: run_owners, run_leases. Returns when the earliest pending retry is due (a
# string), or false. Walks the records by score: the runs in progress before it (few).
NEXT_RETRY = """
local offset = 0
while true do
    local page = redis.call('ZRANGE', KEYS[2], offset, offset + 99, 'WITHSCORES')
    if #page == 0 then return false end
    for j = 1, #page, 2 do
        if redis.call('HGET', KEYS[1], page[j]) == '' then return page[j + 1] end
    end
    offset = offset + 100
end
"""

# KEYS: run_times, claims, tasks, leader-only set, leader term. ARGV: the caller's term
# ("<generation> <owner>" or ""), ids to skip (tasks that cannot load)...
# The earliest time a task needs attention: its next run time, or when the claim of the
# scheduler processing it expires, whichever is later. Returns {a string or false;
# notes}. A run time Python cannot represent is noted as 'score' (for RESCORE) and left
# out; dangling entries and malformed claims are removed.
NEXT_TIME = (
    _HELPERS
    + f"""
local LOWEST, HIGHEST = '{TIME_RANGE[0]:.0f}', '{TIME_RANGE[1]:.0f}'
"""
    + """
-- Leader-only tasks count only for the running term (others leave them to the leader).
local leading = ARGV[1] ~= '' and redis.call('GET', KEYS[5]) == ARGV[1]
local skip = {}
for i = 2, #ARGV do skip[ARGV[i]] = true end
local best = nil
local offset = 0
local function answer()
    if best == nil then return {false, notes} end
    return {string.format('%.17g', best), notes}
end
local function drop_dangling(id)
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    note('dangling', id)
end
-- Entries outside the datetime range, at either end (the walk below stops before the
-- upper end): indexed range queries, empty when the data is sound.
local outside = {
    redis.call('ZRANGE', KEYS[1], '-inf', '(' .. LOWEST, 'BYSCORE', 'LIMIT', 0, 100, 'WITHSCORES'),
    redis.call('ZRANGE', KEYS[1], '(' .. HIGHEST, '+inf', 'BYSCORE', 'LIMIT', 0, 100, 'WITHSCORES'),
}
for _, page in ipairs(outside) do
    for j = 1, #page, 2 do
        local id = page[j]
        if skip[id] then
            -- cannot load: BrokenTasks keeps it out of every answer
        elseif redis.call('HEXISTS', KEYS[3], id) == 0 then
            drop_dangling(id)
        else
            note('score', id, page[j + 1])
        end
    end
end
while true do
    local page = redis.call('ZRANGE', KEYS[1], offset, offset + 99, 'WITHSCORES')
    if #page == 0 then break end
    local removed = 0
    for j = 1, #page, 2 do
        local id, when = page[j], tonumber(page[j + 1])
        if best ~= nil and when >= best then return answer() end
        if not skip[id] and valid_time(when)  -- the others are noted above
                and (leading or redis.call('SISMEMBER', KEYS[4], id) == 0) then
            if redis.call('HEXISTS', KEYS[3], id) == 0 then
                drop_dangling(id)
                removed = removed + 1
            else
                local claim = redis.call('HGET', KEYS[2], id)
                if claim then
                    local expires = parse_claim(claim)
                    if not expires then
                        redis.call('HDEL', KEYS[2], id)
                        note('claim', id, claim)
                    elseif expires > when then
                        when = expires
                    end
                end
                if best == nil or when < best then best = when end
            end
        end
    end
    offset = offset + 100 - removed
end
return answer()
"""
)

# KEYS: run_times, tasks. ARGV: id, the score found, the task's own score ("" when it
# is paused). Puts the task's own run time in place of one Python cannot represent,
# unless the entry or the task changed meanwhile. Returns 1 when rewritten.
RESCORE = """
local found = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not found or tonumber(found) ~= tonumber(ARGV[2]) then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
if ARGV[3] == '' then
    redis.call('ZREM', KEYS[1], ARGV[1])
else
    redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
"""
