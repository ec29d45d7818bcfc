"""The Redis side of recommendations: decayed signal sorted sets and the attribution counters.

Keys (site-wide: all of one site's recommendation keys share the hash tag {SITE}, so in a Redis Cluster
they live in one slot: a site's reads and its write script never cross slots, at the price of one node
carrying each site):
    st:{SITE}:r:FAMILY:ERA:SUB   zset  member → decayed score (see decay.py), at most the family's cap,
                                       expiring IDLE_HALF_LIVES after its last write
    st:{SITE}:rstat              hash  "SLOT STRATEGY METRIC" → count, at most MAX_STAT_FIELDS fields
    st:{SITE}:rlearn             list  with learning in workers: what each server flush learned (recs.Learned,
                                       msgpack), oldest first, at most recs.MAX_QUEUED_FLUSHES
    st:{SITE}:rlearner           str   set while a worker is writing that queue (recs.LEARNER_SEEN_S)
Families: pop (popularity, SUB "all" or "c:CATEGORY"), hot (the same over a short half-life, for
trending), vt/bt (an item's viewed-together / bought-together neighbours, SUB the item id) and vn/bn
(each item's own weight in vt/bt, SUB "n", to normalise them).
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from server.catalog import Catalog, catalog_key
from server.decay import Decay
from server.write_behind import Call, Flush, WriteBehind

DAY_S = 86400.0
MAX_STAT_FIELDS = 2000
_json = msgspec.json.Encoder()
# A flush's signals go out in script calls of at most this many keys and about this many member writes,
# so that none holds Redis up for long: other clients' commands run between them.
MAX_KEYS_PER_SCRIPT = 100
MAX_WRITES_PER_SCRIPT = 200
STATS_TTL_S = 400 * 86400


@dataclass(frozen=True)
class Family:
    name: str
    decay: Decay
    # How many members a key of this family keeps (the lowest scores go first).
    cap: int


POP = Family("pop", Decay(7 * DAY_S), 20_000)
CATEGORY_POP_CAP = 500
HOT = Family("hot", Decay(1 * DAY_S), 2_000)
VIEWED_TOGETHER = Family("vt", Decay(30 * DAY_S), 50)
BOUGHT_TOGETHER = Family("bt", Decay(30 * DAY_S), 50)
VIEWED_NORM = Family("vn", Decay(30 * DAY_S), 200_000)
BOUGHT_NORM = Family("bn", Decay(30 * DAY_S), 200_000)
FAMILIES = {
    family.name: family for family in (POP, HOT, VIEWED_TOGETHER, BOUGHT_TOGETHER, VIEWED_NORM, BOUGHT_NORM)
}


# (family, sub, member, weight): an increment of `member` in the family's key SUB, by `weight` at the time
# of writing. A plain tuple, as learning makes a dozen a batch.
Increment = tuple[str, str, str, float]


# KEYS: sorted sets (one may come twice, from two seconds of a flush). ARGV[1]: JSON, for each key in order
# [cap, ttl, decay factor, {member: weight, …}]: each member goes up by weight times factor (one argument:
# packing thousands of arguments costs the client more than the script costs Redis).
_ADD = """
local writes = cjson.decode(ARGV[1])
for i, key in ipairs(KEYS) do
  local cap, ttl, factor, members = writes[i][1], writes[i][2], writes[i][3], writes[i][4]
  for member, weight in pairs(members) do
    redis.call('ZINCRBY', key, string.format('%.17g', weight * factor), member)
  end
  redis.call('ZREMRANGEBYRANK', key, 0, -cap - 1)
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""

# KEYS[1] the counters; ARGV[1] max fields, ARGV[2] ttl, then pairs (field, increment). A field that is
# not there yet is only added while there is room: clients name slots, so they must not grow it forever.
_COUNT = """
local max = tonumber(ARGV[1])
for i = 3, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 or redis.call('HLEN', KEYS[1]) < max then
    redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
"""


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


# KEYS[1] a sorted set, KEYS[2] the catalog; ARGV[1] how many, ARGV[2] `also`, one more id ("": none), for
# the page's own product. Returns its top members with their scores, flattened, and their records (and that
# of `also`; false where there is none), so that a list costs one round trip.
_TOP = """
local top = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local ids = {}
for i = 1, #top, 2 do ids[#ids + 1] = top[i] end
if ARGV[2] ~= '' then ids[#ids + 1] = ARGV[2] end
if #ids == 0 then return {top, {}} end
return {top, redis.call('HMGET', KEYS[2], unpack(ids))}
"""

# KEYS[1] the hot set, KEYS[2] the usual (popularity) set, KEYS[3] the catalog; ARGV[1] how many of the hot
# top to weigh, ARGV[2] the scale from hot scores to usual ones, ARGV[3] a prior added to every usual score,
# ARGV[4] how many to return, ARGV[5] `also` as in _TOP. Returns, as _TOP does, the members whose scaled hot
# score beats their usual one plus the prior, by the ratio (ties in hot order), and their records.
_RISING = """
local hot = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local scale, prior, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = {}
for i = 1, #hot, 2 do ids[#ids + 1] = hot[i] end
local usual = {}
if #ids > 0 then usual = redis.call('ZMSCORE', KEYS[2], unpack(ids)) end
local rising = {}
for i, item in ipairs(ids) do
  local rise = tonumber(hot[2 * i]) * scale / (tonumber(usual[i] or 0) + prior)
  if rise > 1 then rising[#rising + 1] = {item, rise, i} end
end
table.sort(rising, function(a, b)
  if a[2] ~= b[2] then return a[2] > b[2] end
  return a[3] < b[3]
end)
local flat, wanted = {}, {}
for i = 1, math.min(#rising, n) do
  flat[#flat + 1] = rising[i][1]
  flat[#flat + 1] = tostring(rising[i][2])
  wanted[#wanted + 1] = rising[i][1]
end
if ARGV[5] ~= '' then wanted[#wanted + 1] = ARGV[5] end
if #wanted == 0 then return {flat, {}} end
return {flat, redis.call('HMGET', KEYS[3], unpack(wanted))}
"""

# Each source's neighbours scored by the cosine of their co-occurrence with it: together / sqrt((source's own
# weight + shrink) * (member's weight + shrink)). KEYS: per group (a family's sources with their norm set)
# its sources' neighbour sets then its norm set; last, the catalog. ARGV: per-source count, a number of
# ids whose records to read as well and those ids, then per group: its number of sources, its shrink, its
# sources' ids. Returns, per source in order, its neighbours and their cosines flattened; those ids and the
# neighbours of all, once each; their records (false where there is none).
_COSINES = """
local n, extra = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, ids, listed = {}, {}, {}
local function list(item)
  if listed[item] == nil then
    listed[item] = true
    ids[#ids + 1] = item
  end
end
for i = 3, 2 + extra do list(ARGV[i]) end
local key, arg = 1, 3 + extra
while arg < #ARGV do
  local count, shrink = tonumber(ARGV[arg]), tonumber(ARGV[arg + 1])
  -- Every source's neighbours first, then all their weights (and the sources') in one ZMSCORE.
  local lists, members, index = {}, {}, {}
  local function member(item)
    if index[item] == nil then
      members[#members + 1] = item
      index[item] = #members
    end
  end
  for i = 0, count - 1 do
    member(ARGV[arg + 2 + i])
    lists[i] = redis.call('ZREVRANGE', KEYS[key + i], 0, n - 1, 'WITHSCORES')
    for j = 1, #lists[i], 2 do
      member(lists[i][j])
      list(lists[i][j])
    end
  end
  local weights = redis.call('ZMSCORE', KEYS[key + count], unpack(members))
  local function weight(item) return tonumber(weights[index[item]] or 0) + shrink end
  for i = 0, count - 1 do
    local near, own = lists[i], weight(ARGV[arg + 2 + i])
    local cosines = {}
    for j = 1, #near, 2 do
      cosines[j] = near[j]
      cosines[j + 1] = tostring(tonumber(near[j + 1]) / math.sqrt(own * weight(near[j])))
    end
    out[#out + 1] = cosines
  end
  key, arg = key + count + 1, arg + 2 + count
end
local records = {}
if #ids > 0 then records = redis.call('HMGET', KEYS[#KEYS], unpack(ids)) end
return {out, ids, records}
"""

# A list's members → their scores (a source's neighbours → their cosine with it), best first.
Scores = dict[str, float]
# (site, list: a family or "rising", era, sub: a source or a family's sub, how many members)
ListKey = tuple[str, str, int, str, int]


class ListCache:
    """Lists read from Redis at most `ttl_s` ago, for the `max_lists` read last: sources' neighbour lists
    with their cosines, and the site-wide ones (popular, per category, trending). A hot product's lists,
    and a site's, are read once per `ttl_s` per process, however many slots show them. With `ttl_s` 0
    every list is read afresh. The lists given out are shared: never changed."""

    def __init__(self, ttl_s: float, max_lists: int = 4096) -> None:
        self.ttl_s = ttl_s
        self.max_lists = max_lists
        self._lists: OrderedDict[ListKey, tuple[float, Scores]] = OrderedDict()

    def get(self, key: ListKey, now_s: float) -> Scores | None:
        entry = self._lists.get(key)
        if entry is None:
            return None
        read_s, scores = entry
        if not read_s <= now_s < read_s + self.ttl_s:
            del self._lists[key]
            return None
        self._lists.move_to_end(key)
        return scores

    def put(self, key: ListKey, scores: Scores, now_s: float) -> None:
        """Keeps the list, unless empty: a new shop's, or a new product's, shows its first traffic at once."""
        if self.ttl_s <= 0 or not scores:
            return
        self._lists[key] = (now_s, scores)
        self._lists.move_to_end(key)
        while len(self._lists) > self.max_lists:
            self._lists.popitem(last=False)


class Ranking(NamedTuple):
    """Members best first with their scores, and the raw catalog records of those that have one (and of
    the id asked for `also`, if it has one)."""

    scores: dict[str, float]
    records: dict[str, bytes]


def _ranking(flat: Sequence[bytes], records: Sequence[bytes | None], also: str) -> Ranking:
    members = [_text(member) for member in flat[::2]]
    scores = {member: float(score) for member, score in zip(members, flat[1::2], strict=True)}
    ids = [*members, also] if also else members
    return Ranking(scores, {item: raw for item, raw in zip(ids, records, strict=True) if raw})


def signal_key(site: str, family: str, era: int, sub: str) -> str:
    return f"st:{{{site}}}:r:{family}:{era}:{sub}"


def stats_key(site: str) -> str:
    return f"st:{{{site}}}:rstat"


def learned_key(site: str) -> str:
    return f"st:{{{site}}}:rlearn"


def learner_key(site: str) -> str:
    return f"st:{{{site}}}:rlearner"


def _cap(family: Family, sub: str) -> int:
    return CATEGORY_POP_CAP if family is POP and sub != "all" else family.cap


# Where the increments merged at one second go: family → sub → member → weight, not yet decayed.
Merged = dict[str, dict[str, dict[str, float]]]


def _merge(merged: Merged, signals: Iterable[Increment]) -> None:
    # Plain dicts: defaultdict's factories cost twice as much here, where most subs are new in a flush.
    for family, sub, member, weight in signals:
        subs = merged.get(family)
        if subs is None:
            subs = merged[family] = {}
        members = subs.get(sub)
        if members is None:
            members = subs[sub] = {}
        members[member] = members.get(member, 0.0) + weight


Write = tuple[int, int, float, Mapping[str, float]]


def _add_calls(site: str, times: Mapping[float, Merged]) -> list[tuple[list[str], bytes]]:
    """One site's merged increments, each time's to the eras it writes to, as _ADD's (keys, argument) for
    script calls of at most MAX_KEYS_PER_SCRIPT keys and about MAX_WRITES_PER_SCRIPT members."""
    calls: list[list[tuple[str, Write]]] = []
    members = 0
    for key, write in _writes(site, times):
        if not calls or len(calls[-1]) >= MAX_KEYS_PER_SCRIPT or members >= MAX_WRITES_PER_SCRIPT:
            calls.append([])
            members = 0
        calls[-1].append((key, write))
        members += len(write[3])
    return [([key for key, _ in call], _json.encode([write for _, write in call])) for call in calls]


def _writes(site: str, times: Mapping[float, Merged]) -> Iterator[tuple[str, Write]]:
    """Each key to write and its write: (cap, ttl, factor, member → weight)."""
    for now_s, families in times.items():
        for name, subs in families.items():
            family = FAMILIES[name]
            for write in family.decay.writes(now_s):
                prefix = signal_key(site, name, write.era, "")
                for sub, members in subs.items():
                    yield prefix + sub, (_cap(family, sub), write.ttl_s, write.factor, members)


class SignalStore:
    """Scripts go out with EVAL (Redis caches them by hash): redis-py checks registered scripts with a
    SCRIPT EXISTS round trip before every pipeline that carries one.

    What events teach is merged in process memory (`add_signals`, `add_counts`) and written behind the
    answers (server/write_behind.py) by `queue_pending`, or taken (`take_increments`) for workers to write
    (`increment_calls`); reads see it once written."""

    def __init__(
        self,
        redis: aioredis.Redis,
        catalog: Catalog,
        behind: WriteBehind | None = None,
        lists_ttl_s: float = 0.0,
    ) -> None:
        self.redis = redis
        # Where lists read their members' records when no script of theirs does.
        self.catalog = catalog
        self.behind = behind
        self.lists = ListCache(lists_ttl_s)
        # Site → second → what was taught then: keys and decay factors are worked out once per flush.
        self._increments: defaultdict[str, dict[float, Merged]] = defaultdict(dict)
        self._counts: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))

    def add_signals(self, site: str, signals: Iterable[Increment], now_s: float) -> None:
        """Merges a batch's increments into what the next flush writes, by the second they were made at:
        over half-lives of a day and more, a second changes a decay factor by less than 1e-5."""
        _merge(self._increments[site].setdefault(int(now_s), {}), signals)

    def add_counts(self, site: str, counts: dict[str, float]) -> None:
        merged = self._counts[site]
        for field, amount in counts.items():
            merged[field] += amount

    def queue_pending(self, flush: Flush) -> int:
        """Queues what add_signals and add_counts merged, each within one site's hash tag: the counters into
        the flush's pipeline (returns the commands queued), the increments as script calls apart (bounded as
        _add_calls says)."""
        for site, seconds in self.take_increments().items():
            flush.apart += self.increment_calls(site, seconds)
        counts, self._counts = self._counts, defaultdict(lambda: defaultdict(float))
        counted = {site: fields for site, fields in counts.items() if fields}
        for site, fields in counted.items():
            self.queue_counts(flush.pipe, site, fields)
        return len(counted)

    def take_increments(self) -> dict[str, dict[float, Merged]]:
        """What add_signals merged (site → second → increments), no longer pending here."""
        pending, self._increments = self._increments, defaultdict(dict)
        return pending

    def increment_calls(self, site: str, seconds: Mapping[float, Merged]) -> list[Call]:
        return [
            partial(self.redis.eval, _ADD, len(keys), *keys, arg) for keys, arg in _add_calls(site, seconds)
        ]

    def queue_signals(self, pipe: Pipeline, site: str, signals: Iterable[Increment], now_s: float) -> None:
        """These increments, in every era they belong to, now, in script calls bounded as _add_calls says
        (bulk loads)."""
        merged: Merged = {}
        _merge(merged, signals)
        for keys, arg in _add_calls(site, {now_s: merged}):
            pipe.eval(_ADD, len(keys), *keys, arg)

    def queue_counts(self, pipe: Pipeline, site: str, counts: Mapping[str, float]) -> None:
        if counts:
            args: list[str | int] = [MAX_STAT_FIELDS, STATS_TTL_S]
            for field, amount in counts.items():
                args += [field, repr(amount)]
            pipe.eval(_COUNT, 1, stats_key(site), *args)

    async def top(self, site: str, family: Family, sub: str, n: int, now_s: float, also: str = "") -> Ranking:
        """The current era's top n members with their scores, best first, and their catalog records (and
        that of `also`) read in the same step."""
        era = family.decay.era(now_s)
        keys = [signal_key(site, family.name, era, sub), catalog_key(site)]
        return await self._kept_ranking(site, (site, family.name, era, sub, n), now_s, also, _TOP, keys, [n])

    async def rising(
        self, site: str, pool: int, scale: float, prior: float, n: int, now_s: float, also: str = ""
    ) -> Ranking:
        """Of the `pool` hottest members site-wide, the `n` whose hot score times `scale` beats their usual
        score (popularity) plus `prior` by the most, each scored by that ratio, with their records (and that
        of `also`)."""
        era = HOT.decay.era(now_s)
        keys = [
            signal_key(site, HOT.name, era, "all"),
            signal_key(site, POP.name, POP.decay.era(now_s), "all"),
            catalog_key(site),
        ]
        args: list[str | int] = [pool, repr(scale), repr(prior), n]
        return await self._kept_ranking(
            site, (site, "rising", era, "all", n), now_s, also, _RISING, keys, args
        )

    async def _kept_ranking(
        self,
        site: str,
        key: ListKey,
        now_s: float,
        also: str,
        script: str,
        keys: Sequence[str],
        args: Sequence[str | int],
    ) -> Ranking:
        """The ranking the script returns as _TOP does (its arguments followed by `also`), or, if read
        lately (ListCache), the list kept, with its records read afresh."""
        kept = self.lists.get(key, now_s)
        if kept is not None:
            return Ranking(kept, await self.catalog.raw(site, [*kept, also] if also else list(kept)))
        flat, raws = await self.redis.eval(script, len(keys), *keys, *args, also)
        ranking = _ranking(flat, raws, also)
        self.lists.put(key, ranking.scores, now_s)
        return ranking

    async def neighbours(
        self,
        site: str,
        groups: Sequence[tuple[Family, Family, dict[str, float]]],
        per_source: int,
        top: int,
        shrink: float,
        now_s: float,
        also: str = "",
    ) -> Ranking:
        """The `top` best neighbours of every group's sources (family, its norm family, sources → weight):
        each scored by its cosine with a source times the source's weight, summed over sources and groups,
        best first, with their catalog records (and that of `also`). Lists read lately come from memory
        (ListCache); the others, with every candidate's record, from one script call; with every list
        in memory, the records come from one HMGET."""
        lists, read = await self._cosines(site, groups, per_source, shrink, now_s, also)
        blend: dict[str, float] = {}
        for family, _, sources in groups:
            for source, weight in sources.items():
                for item, cosine in lists[family.name, source].items():
                    blend[item] = blend.get(item, 0.0) + weight * cosine
        best = sorted(blend, key=blend.__getitem__, reverse=True)[:top]
        unread = [item for item in [*best, also] if item and item not in read]
        read.update(await self.catalog.raw(site, unread))
        wanted = {*best, also}
        records = {item: raw for item, raw in read.items() if isinstance(raw, bytes) and item in wanted}
        return Ranking({item: blend[item] for item in best}, records)

    async def _cosines(
        self,
        site: str,
        groups: Sequence[tuple[Family, Family, dict[str, float]]],
        per_source: int,
        shrink: float,
        now_s: float,
        also: str,
    ) -> tuple[dict[tuple[str, str], Scores], dict[str, bytes | str | None]]:
        """(family, source) → the source's `per_source` strongest neighbours with their cosines, from the
        lists read lately, the others read in one script call with the records of every neighbour (and of
        `also`), so that the list needs no other round trip: those records (None: not in the catalog)."""
        found: dict[tuple[str, str], Scores] = {}
        asked: list[tuple[Family, Family, list[tuple[str, ListKey]]]] = []
        for family, norm, sources in groups:
            era = family.decay.era(now_s)
            missing = []
            for source in sources:
                key = (site, family.name, era, source, per_source)
                cosines = self.lists.get(key, now_s)
                if cosines is None:
                    missing.append((source, key))
                else:
                    found[family.name, source] = cosines
            if missing:
                asked.append((family, norm, missing))
        if not asked:
            return found, {}
        extra = list(
            dict.fromkeys([*([also] if also else []), *(item for near in found.values() for item in near)])
        )
        keys: list[str] = []
        args: list[str | float] = [per_source, len(extra), *extra]
        for family, norm, missing in asked:
            era = family.decay.era(now_s)
            keys += [signal_key(site, family.name, era, source) for source, _ in missing]
            keys.append(signal_key(site, norm.name, era, "n"))
            args += [
                len(missing),
                repr(shrink * norm.decay.factor(now_s, era)),
                *(source for source, _ in missing),
            ]
        keys.append(catalog_key(site))
        flats, ids, raws = await self.redis.eval(_COSINES, len(keys), *keys, *args)
        fetched = [(family.name, source, key) for family, _, missing in asked for source, key in missing]
        for (family_name, source, key), flat in zip(fetched, flats, strict=True):
            cosines = {_text(item): float(cosine) for item, cosine in zip(flat[::2], flat[1::2], strict=True)}
            self.lists.put(key, cosines, now_s)
            found[family_name, source] = cosines
        return found, dict(zip(map(_text, ids), raws, strict=True))

    async def stats(self, site: str) -> dict[str, float]:
        if self.behind is not None:
            await self.behind.flush()
        raw = await self.redis.hgetall(stats_key(site))
        return {_text(field): float(value) for field, value in raw.items()}
