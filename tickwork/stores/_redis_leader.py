"""The leader's term in :class:`~tickwork.stores.redis.RedisStore` (schema version 4).

Keys, for ``prefix="tickwork"``:

* ``tickwork:leader``: the running term, ``"<generation> <owner>"``, set with ``PX`` so
  that Redis itself ends it when the lease runs out (the server's clock is the one every
  member's term is measured by);
* ``tickwork:leader_generation``: the counter that numbers the terms (the fencing token;
  ``INCR`` per new term, never reset);
* ``tickwork:leader_only``: set of the ids of leader-only tasks; claims
  (``ACQUIRE``) and the next run time (``NEXT_TIME``) leave them out unless the
  caller's term is the one in ``tickwork:leader``, checked in the same script.

Taking a term is ``SET NX PX`` with the generation counted up in one script
(:data:`ELECT`): only the store instance holding the running term renews it
(``PEXPIRE``; owner *and* generation must match), and an
expired term is gone, so taking it again starts the next generation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

__all__ = ["ELECT", "RESIGN", "RedisLeader"]

# KEYS: term, generation counter. ARGV: owner, lease (milliseconds), the term the caller
# holds ("" for none). Returns the generation of the caller's running term (renewed only
# if it is the very term the caller holds), a new one if none runs, or false while
# another term runs.
ELECT = """
local term = redis.call('GET', KEYS[1])
if term then
    local sep = string.find(term, ' ', 1, true)
    if ARGV[3] ~= '' and term == ARGV[3] then
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return tonumber(string.sub(term, 1, sep - 1))
    end
    if sep then return false end
    -- (garbled: nobody's term; replaced below)
end
local generation = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], generation .. ' ' .. ARGV[1], 'PX', ARGV[2])
return generation
"""

# KEYS: term. ARGV: owner. Ends the owner's term (only theirs).
RESIGN = """
local term = redis.call('GET', KEYS[1])
if not term then return 0 end
local sep = string.find(term, ' ', 1, true)
if sep and string.sub(term, sep + 1) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
end
return 0
"""


class RedisLeader:
    """Elections under one prefix, and the term this store instance holds."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.term_key = f"{prefix}:leader"
        self.generation_key = f"{prefix}:leader_generation"
        #: The set of leader-only task ids (written by the store's add and update).
        self.tasks_key = f"{prefix}:leader_only"
        self._elect: Any = client.register_script(ELECT)
        self._resign: Any = client.register_script(RESIGN)
        #: ``"<generation> <owner>"`` of the term this instance holds, or None.
        self._term: str | None = None

    def token(self, owner: str | None) -> str:
        """The term this instance holds as the scripts compare it (``""``: none, or
        not ``owner``'s when an owner is given)."""
        term = self._term
        if term is None or (owner is not None and term.partition(" ")[2] != owner):
            return ""
        return term

    def elect(self, owner: str, lease: float) -> int | None:
        """Take or renew ``owner``'s term for ``lease`` seconds."""
        millis = max(1, round(lease * 1000))
        found = self._elect(
            keys=[self.term_key, self.generation_key], args=[owner, millis, self.token(owner)]
        )
        if found is None:
            self._term = None
            return None
        generation = int(found)
        self._term = f"{generation} {owner}"
        return generation

    def current(self, client: redis.Redis) -> tuple[str, int, float] | None:
        """The running term as (owner, generation, seconds left by the server's clock),
        or None when none runs."""
        pipe = client.pipeline(transaction=True)
        pipe.get(self.term_key)
        pipe.pttl(self.term_key)
        term, millis = pipe.execute()
        if term is None or millis is None or int(millis) <= 0:
            return None  # (-2: gone between the two commands is impossible in MULTI)
        text = term.decode() if isinstance(term, bytes) else str(term)
        generation, sep, owner = text.partition(" ")
        if not sep or not generation.isdigit():
            return None  # garbled: nobody's term (the next election replaces it)
        return owner, int(generation), int(millis) / 1000

    def resign(self, owner: str) -> None:
        """End ``owner``'s term now."""
        self._term = None
        self._resign(keys=[self.term_key], args=[owner])
