"""The Redis store's tag index, kept by the same Lua scripts that add, update and remove
tasks (so a task and its index entries change together, atomically).

Keys (after the store's ``prefix``):

* ``tag_index``: one sorted set, every member ``tag + "\\0" + task id`` with score 0. The
  tasks of a tag are one lexicographic range, ``[tag\\0, (tag\\1)``: found without
  reading any other task. (Tags cannot hold NUL: ``check_tag`` refuses it.)
* ``task_tags``: a hash, task id -> its tags joined by NUL, so a write can drop the
  entries of the tags a task had before without reading its record.

Acting on a tag (pause, resume, remove) is one read (:data:`TAGGED`) and one write
(:data:`WRITE_TAGGED`) whatever the number of tasks: the records are rewritten in Python
(they are the serializer's bytes, maybe signed or encrypted, which Lua cannot make), and
the write is a compare-and-set: a record changed between the two is not written, and the
store reads it again.

A pass's write-back (``RELEASE``) keeps the index in step too: a task it removes leaves
the index, and one it writes back gets its record's tags in the index (another process
may have changed them while the pass held the task: the write-back stores the task as it
claimed it, and notes the tags it replaced, which the store logs). Entries of tasks that
are gone (written before this) are dropped by :data:`TAGGED` when it meets them; it never
returns such a task.
"""

from __future__ import annotations

__all__ = ["REMOVE", "TAGGED", "TAG_HELPERS", "WRITE_TAGGED", "tag_helpers"]


def tag_helpers(index: str, tags: str) -> str:
    """The Lua functions ``untag(id)`` and ``tag(id, joined)`` on the tag index and the
    task_tags hash, given as the script's ``KEYS[n]`` expressions."""
    return f"""
local function untag(id)
    local old = redis.call('HGET', {tags}, id)
    if old then
        for tag in string.gmatch(old, '[^%z]+') do
            redis.call('ZREM', {index}, tag .. '\\0' .. id)
        end
        redis.call('HDEL', {tags}, id)
    end
end
local function tag(id, joined)
    untag(id)
    if joined ~= '' then
        redis.call('HSET', {tags}, id, joined)
        for name in string.gmatch(joined, '[^%z]+') do
            redis.call('ZADD', {index}, 0, name .. '\\0' .. id)
        end
    end
end
"""


#: KEYS[4] the tag index, KEYS[5] task_tags (the scripts of this module and the task
#: writes have them there; ``RELEASE`` places them elsewhere: :func:`tag_helpers`).
TAG_HELPERS = tag_helpers("KEYS[4]", "KEYS[5]")

#: KEYS: tasks, run_times, leader-only set, tag index, task_tags, claims. ARGV[1]: the
#: id. Deletes the task with its index entries; returns 1, or 0 when there was none.
REMOVE = (
    TAG_HELPERS
    + """
local deleted = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
untag(ARGV[1])
return deleted
"""
)

#: KEYS: tasks, run_times, leader-only set, tag index, task_tags. ARGV[1]: the tag.
#: Returns id, blob, id, blob ... of the tasks with the tag (entries of tasks that are
#: gone are dropped on the way).
TAGGED = (
    TAG_HELPERS
    + """
local first = ARGV[1] .. '\\0'
local members = redis.call('ZRANGE', KEYS[4], '[' .. first, '(' .. ARGV[1] .. '\\1', 'BYLEX')
local found = {}
for _, member in ipairs(members) do
    local id = string.sub(member, #first + 1)
    local blob = redis.call('HGET', KEYS[1], id)
    if blob then
        found[#found + 1] = id
        found[#found + 1] = blob
    else
        untag(id)
    end
end
return found
"""
)

#: KEYS: tasks, run_times, leader-only set, tag index, task_tags, claims. ARGV: quadruples
#: (id, the blob read, the new blob or "" to delete the task, score or "" for paused).
#: Each is written only while the stored blob is still the one read (compare-and-set);
#: a delete goes as :data:`REMOVE` goes (the claim too). Returns the ids not written
#: (changed or removed since the read).
WRITE_TAGGED = (
    TAG_HELPERS
    + """
local changed = {}
for i = 1, #ARGV, 4 do
    local id = ARGV[i]
    if redis.call('HGET', KEYS[1], id) ~= ARGV[i + 1] then
        changed[#changed + 1] = id
    elseif ARGV[i + 2] == '' then
        redis.call('HDEL', KEYS[1], id)
        redis.call('ZREM', KEYS[2], id)
        redis.call('SREM', KEYS[3], id)
        redis.call('HDEL', KEYS[6], id)
        untag(id)
    else
        redis.call('HSET', KEYS[1], id, ARGV[i + 2])
        if ARGV[i + 3] == '' then
            redis.call('ZREM', KEYS[2], id)
        else
            redis.call('ZADD', KEYS[2], ARGV[i + 3], id)
        end
    end
end
return changed
"""
)
