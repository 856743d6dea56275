"""Fault injection: the edges where live trading fails, on demand and reproducible.

Every simulator owns one :class:`Faults` (``sim.faults``), shared by its
protocol modules through a few hooks:

- :meth:`Faults.middleware` (aiohttp, outermost) delays, resets, 5xx-es,
  rate-limits or answers with an exchange error for matching REST calls, or
  lets a call through and then loses its answer (the order *was* accepted);
- :meth:`Faults.admit_ws` / :meth:`Faults.track_ws` refuse WebSocket
  handshakes while a channel is down and remember every socket's channel
  (``public`` market data, ``private`` user data) and age;
- :meth:`Faults.outgoing` duplicates and reorders queued stream messages;
- :func:`server_ms` is the server's wall clock (signed timestamps, ``/time``),
  shifted by :meth:`Faults.clock_offset`.

What differs per exchange is data on the simulator class: ``fault_routes``
(call name -> routes) and ``fault_reply`` (the exchange's own error shapes).
Random choices come from one ``random.Random(seed)``: the same seed and the
same traffic give the same faults. ``Faults.applied`` lists what was done.
"""
import asyncio
import collections
import fnmatch
import logging
import math
import random
import threading
import time
import weakref

from aiohttp import web

from .faults_subscribe import SubscriptionHold

log = logging.getLogger(__name__)

CHANNELS = ('public', 'private')
REST_ACTIONS = ('delay', 'reset', 'server_error', 'rate_limit', 'error',
                'accept_then_reset', 'accept_then_timeout')
_tls = threading.local()     # the running simulator's Faults, per loop thread


def server_ms():
    """The simulator's wall clock in ms: real time plus the injected offset.

    Each simulator runs its loop in its own thread, so the offset of one
    simulator never leaks into another running in the same process.
    """
    faults = getattr(_tls, 'faults', None)
    offset = faults.clock_offset_ms if faults is not None else 0
    return int(time.time() * 1000) + offset


class RestFault:
    """One REST rule: which calls, what to do, how often. ``hits`` counts uses."""

    def __init__(self, call, routes, action, times=1, after=0, seconds=None, status=None,
                 retry_after=None, error=None, probability=1.0, during=None):
        if action not in REST_ACTIONS:
            raise ValueError('action is one of %s, got %r' % (', '.join(REST_ACTIONS), action))
        self.call, self.routes, self.action = call, routes, action
        self.times, self.after, self.probability = times, after, probability
        self.seconds, self.status, self.retry_after, self.error = (seconds, status,
                                                                   retry_after, error)
        # async fn(faults) awaited when the rule acts, before its action: a
        # fault that lands while this request is in flight (stream dropped...)
        self.during = during
        self.seen = 0       # matching requests so far
        self.hits = 0       # requests this rule acted on

    @property
    def spent(self):
        return self.times is not None and self.hits >= self.times

    def matches(self, method, path):
        return any(m in ('*', method) and fnmatch.fnmatchcase(path, p) for m, p in self.routes)

    def __repr__(self):
        return 'RestFault(%s %s hits=%d/%s)' % (self.call, self.action, self.hits, self.times)


class Faults(SubscriptionHold):
    """The fault switchboard of one simulator (thread-safe: test threads call in)."""

    def __init__(self, sim, seed=0):
        self.sim = sim
        self.rng = random.Random(seed)
        self.rules = []
        self.applied = collections.deque(maxlen=1000)   # (what, detail), oldest first
        # every fault by kind, never trimmed (a soak outlives ``applied``), plus
        # 'ws duplicated' / 'ws reordered' per scrambled message
        self.counts = collections.Counter()
        self.clock_offset_ms = 0
        self._down = {}                 # channel -> monotonic time it comes back (inf)
        self._scramble = {}             # channel -> (duplicate p, reorder p)
        self._holding = False           # account events held back (hold_account_events)
        self._held_events = []          # (ws, text) held, oldest first (loop thread only)
        # ws -> [channel, opened (monotonic), held texts, raw send_str, stalled until]
        self._sockets = weakref.WeakKeyDictionary()
        self._lifetime = None
        self._watchdog = None

    # -- plumbing -----------------------------------------------------------------
    def bind(self):
        """Called on the simulator's loop thread when it starts."""
        _tls.faults = self

    def _on_loop(self, fn, *args):
        """Run ``fn`` (plain or coroutine function) on the simulator's loop."""
        loop = getattr(self.sim, '_loop', None)
        if loop is None or not loop.is_running():
            raise RuntimeError('start the simulator before injecting this fault')
        return self.sim._call(fn, *args)

    async def start(self):
        """Simulator startup (on its loop): bind the clock, start the watchdog."""
        self.bind()
        if self._lifetime is not None and self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._enforce())

    def _note(self, what, detail=''):
        self.applied.append((what, detail))
        self.counts[what] += 1
        log.info('fault injected: %s %s', what, detail)

    def clear(self):
        """Remove every fault; connections stay as they are."""
        self.rules.clear()
        self._down.clear()
        for entry in list(self._sockets.values()):
            entry[4] = 0.0
        self._scramble.clear()
        self.clock_offset_ms = 0
        self._lifetime = None
        if getattr(self.sim, '_loop', None) is not None and self.sim._loop.is_running():
            self._on_loop(self._release_all)
            if self._holding or self._held_events:
                self.release_account_events()     # held, never dropped
            if self._sub_gate is not None:
                self.release_user_subscriptions()
        self._holding = False

    # -- REST ---------------------------------------------------------------------------
    def rest(self, call, action, *, times=1, after=0, seconds=None, status=None,
             retry_after=None, error=None, probability=1.0, during=None):
        """Act on the next ``times`` (None: every) calls named ``call``.

        ``call``: a name from the simulator's ``fault_routes`` ('create_order',
        'fetch_order', 'klines', '*' ...) or 'METHOD /path/pattern'.
        ``action``: 'delay' (``seconds`` before handling), 'reset' (connection
        dropped, never handled), 'server_error' (``status`` 500/502/503/504),
        'rate_limit' (``status`` 429/418 or the exchange's code, ``retry_after``
        seconds), 'error' (the exchange's named ``error``, e.g. 'permission'),
        'accept_then_reset' / 'accept_then_timeout' (handled, then the answer
        is lost: dropped, or held ``seconds`` until the client gives up).
        ``after`` skips that many matching calls first; ``probability`` picks
        calls at random (seeded). ``during`` (an async function of this
        Faults) runs on the loop when the rule acts, before the action: another
        fault that lands while the request is in flight. Returns the rule
        (``.hits`` counts uses).
        """
        rule = RestFault(call, self._routes(call), action, times, after, seconds, status,
                         retry_after, error, probability, during)
        self.rules.append(rule)      # read on the loop; a list append is atomic
        return rule

    def _routes(self, call):
        if call == '*':
            return (('*', '*'),)
        method, _, path = call.partition(' ')
        if path:
            return ((method.upper(), path),)
        routes = self.sim.fault_routes.get(call)
        if routes is None:
            raise ValueError('unknown call %r; known: %s, or "METHOD /path"'
                             % (call, ', '.join(sorted(self.sim.fault_routes))))
        return routes

    def _match(self, request):
        for rule in self.rules:
            if rule.spent or not rule.matches(request.method, request.path):
                continue
            rule.seen += 1
            if rule.seen <= rule.after or self.rng.random() >= rule.probability:
                continue
            rule.hits += 1
            return rule
        return None

    @web.middleware
    async def middleware(self, request, handler):
        rule = self._match(request)
        if rule is None:
            return await handler(request)
        self._note('rest %s' % rule.action, '%s %s' % (request.method, request.path))
        if rule.during is not None:
            await rule.during(self)
        action = rule.action
        if action == 'delay':
            await request.read()         # received in full; only handling waits
            await asyncio.sleep(rule.seconds or 0.0)
            return await handler(request)
        if action == 'reset':
            return self._abort(request)
        if action in ('server_error', 'rate_limit', 'error'):
            return self.sim.fault_reply(action, rule)
        response = await handler(request)            # accepted: the answer is lost below
        if action == 'accept_then_timeout':
            await self._hold(request, 3600.0 if rule.seconds is None else rule.seconds)
        return self._abort(request)

    @staticmethod
    async def _hold(request, seconds):
        """Keep the answer back until ``seconds`` pass or the client gave up."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(0.02)

    @staticmethod
    def _abort(request):
        transport = request.transport
        if transport is not None:
            transport.abort()        # an RST: the client sees a dropped connection
        return web.Response(status=500)   # never written: the socket is gone

    # -- WebSocket connections -------------------------------------------------------------
    def admit_ws(self, channel):
        """Refuse a handshake (HTTP 503) while ``channel`` is down."""
        until = self._down.get(channel)
        if until is not None and time.monotonic() < until:
            self._note('ws refused', channel)
            raise web.HTTPServiceUnavailable(text='stream temporarily unavailable')

    def track_ws(self, ws, channel):
        """Remember an accepted socket; its sends go through the stall gate."""
        entry = self._sockets[ws] = [channel, time.monotonic(), [], ws.send_str, 0.0]

        async def gated_send(text, *args, **kwargs):
            # While stalled, and until what was held is out, keep the order.
            if _stalled(entry) or entry[2]:
                entry[2].append(text)
                return None
            return await entry[3](text, *args, **kwargs)
        ws.send_str = gated_send

    def _selected(self, channel):
        return [ws for ws, e in list(self._sockets.items())
                if not ws.closed and channel in ('all', e[0])]

    def _channels(self, channel):
        if channel != 'all' and channel not in CHANNELS:
            raise ValueError("channel is 'public', 'private' or 'all', got %r" % channel)
        return CHANNELS if channel == 'all' else (channel,)

    def drop_ws(self, channel='all', seconds=0.0):
        """Close the channel's connections now; refuse new ones for ``seconds``
        (None: until :meth:`restore_ws`)."""
        self._channels(channel)
        return self._on_loop(self.drop_ws_now, channel, seconds)

    async def drop_ws_now(self, channel='all', seconds=0.0):
        """:meth:`drop_ws` on the simulator's loop (e.g. as a rule's ``during``)."""
        until = math.inf if seconds is None else time.monotonic() + seconds
        for ch in self._channels(channel):
            self._down[ch] = until
        socks = self._selected(channel)
        self._note('ws drop', '%s x%d for %ss' % (channel, len(socks), seconds))
        await asyncio.gather(*(ws.close(code=1001, message=b'fault: dropped')
                               for ws in socks), return_exceptions=True)
        return len(socks)

    def restore_ws(self, channel='all'):
        """Accept connections on the channel again; end stalls on it."""
        def run():
            for ch in self._channels(channel):
                self._down.pop(ch, None)
            for ws in self._selected(channel):
                self._sockets[ws][4] = 0.0
            return self._release_all()
        self._on_loop(run)

    def stall_ws(self, channel='all', seconds=1.0):
        """The channel's open connections go silent for ``seconds`` (None:
        until :meth:`restore_ws`) without closing: messages and pongs are held
        back, then delivered in order. A client that gives up first and
        reconnects gets a working connection (and loses what was held)."""
        until = math.inf if seconds is None else time.monotonic() + seconds

        def run():
            socks = self._selected(channel)
            for ws in socks:
                self._sockets[ws][4] = until
                ws._autoping = False          # pings go unanswered too
            self._note('ws stall', '%s x%d for %ss' % (channel, len(socks), seconds))
            if seconds is not None:
                asyncio.get_running_loop().call_later(
                    seconds, lambda: asyncio.ensure_future(self._release_all()))
            return len(socks)
        return self._on_loop(run)

    async def _release_all(self):
        """Deliver what stalls held back, in order, on sockets no longer stalled."""
        for ws, entry in list(self._sockets.items()):
            held, send = entry[2], entry[3]
            if _stalled(entry):
                continue
            ws._autoping = True
            while held and not ws.closed:
                try:
                    await send(held.pop(0))
                except (ConnectionError, RuntimeError):
                    break
            held.clear()

    def scramble_ws(self, channel='all', duplicate=0.0, reorder=0.0):
        """Send some stream messages twice (probability ``duplicate``) and
        some after the messages queued behind them (``reorder``); seeded."""
        for ch in self._channels(channel):
            self._scramble[ch] = (float(duplicate), float(reorder))
        self._note('ws scramble', '%s dup=%s reorder=%s' % (channel, duplicate, reorder))

    def hold_account_events(self):
        """From now on keep back every account event (orders, fills, balances,
        positions: the queued messages of the 'private' channel) until
        :meth:`release_account_events`, while the market stream goes on: a
        bar's close then arrives before the fills made inside that bar, the
        cross-stream race a live broker has to settle itself. Unlike
        :meth:`stall_ws` the connection stays healthy (pongs and WS-API
        replies are not queued messages and still pass), so the client does
        not reconnect. ``counts['account event held']`` counts the messages."""
        self._holding = True
        self._note('account events held')

    def release_account_events(self):
        """Stop holding; deliver what was held, in order. Returns how many."""
        self._holding = False

        async def run():
            held, self._held_events = self._held_events, []
            for ws, text in held:
                if not ws.closed:
                    try:
                        await ws.send_str(text)
                    except (ConnectionError, RuntimeError):
                        break       # the client went away: nobody to deliver to
            self._note('account events released', str(len(held)))
            return len(held)
        return self._on_loop(run)

    def account_events_held(self):
        """How many account events are held back now (not released yet)."""
        return len(self._held_events)

    def _hold_account(self, batch):
        """Take the private channel's messages out of ``batch`` (loop thread)."""
        out = []
        for item in batch:
            entry = self._sockets.get(item[0])
            if entry is not None and entry[0] == 'private':
                self._held_events.append(item)
                self.counts['account event held'] += 1
            else:
                out.append(item)
        return out

    def outgoing(self, batch):
        """The protocol modules' outbox, duplicated/reordered as configured."""
        if self._holding and batch:
            batch = self._hold_account(batch)
        if not self._scramble or not batch:
            return batch
        out, deferred = [], []
        for item in batch:
            entry = self._sockets.get(item[0])
            dup, reorder = self._scramble.get(entry[0] if entry else None, (0.0, 0.0))
            if reorder and self.rng.random() < reorder:
                deferred.append(item)          # goes out after the rest of this batch
                self.counts['ws reordered'] += 1
                continue
            out.append(item)
            if dup and self.rng.random() < dup:
                out.append(item)
                self.counts['ws duplicated'] += 1
        return out + deferred

    def connection_lifetime(self, seconds):
        """Close every connection ``seconds`` after it opened (Binance does at
        24 h); None stops it. May be set before the simulator starts."""
        self._lifetime = seconds
        self._note('ws lifetime', '%ss' % seconds)

        async def run():
            if self._lifetime is not None and self._watchdog is None:
                self._watchdog = asyncio.get_running_loop().create_task(self._enforce())
        if getattr(self.sim, '_loop', None) is not None and self.sim._loop.is_running():
            self._on_loop(run)

    async def _enforce(self):
        try:
            while self._lifetime is not None:
                await asyncio.sleep(max(0.02, min(1.0, self._lifetime / 4.0)))
                limit = self._lifetime
                if limit is None:
                    break
                now = time.monotonic()
                old = [ws for ws, e in list(self._sockets.items())
                       if not ws.closed and now - e[1] >= limit]
                for ws in old:
                    self._note('ws lifetime reached', self._sockets[ws][0])
                    await ws.close(code=1000, message=b'connection lifetime reached')
        finally:
            self._watchdog = None

    async def stop(self):
        """Simulator shutdown: end the watchdog task."""
        self._lifetime = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)

    def connections(self, channel='all'):
        """How many open connections the channel has now."""
        return self._on_loop(lambda: len(self._selected(channel)))

    # -- account streams and the clock ---------------------------------------------------
    def expire_user_streams(self):
        """End every user-data stream the exchange's way (Binance futures: the
        listenKeys expire; spot WS-API: the subscriptions are terminated).
        Returns how many ended; exchanges without the notion raise
        NotImplementedError."""
        async def run():
            count = self.sim.expire_user_streams_now()
            self._note('user streams expired', str(count))
            await self.sim.flush_events()
            return count
        return self._on_loop(run)

    def clock_offset(self, ms):
        """Shift the server's wall clock by ``ms`` (signed requests outside the
        client's recvWindow are refused until it syncs with ``/time``)."""
        self.clock_offset_ms = int(ms)
        self._note('clock offset', '%+d ms' % ms)


def _stalled(entry):
    return time.monotonic() < entry[4]


# Canned faults by name: the CLI's --fault, and random mixes over a long run.
PRESETS = {
    'ws_drop_public': lambda f: f.drop_ws('public'),
    'ws_drop_private': lambda f: f.drop_ws('private'),
    'ws_drop_all': lambda f: f.drop_ws('all'),
    'create_reset': lambda f: f.rest('create_order', 'reset'),
    'create_lost_answer': lambda f: f.rest('create_order', 'accept_then_reset'),
    'create_5xx': lambda f: f.rest('create_order', 'server_error', status=503),
    'read_5xx': lambda f: f.rest('fetch_order', 'server_error', status=502),
    'read_reset': lambda f: f.rest('fetch_order', 'reset'),
    'klines_5xx': lambda f: f.rest('klines', 'server_error', status=500),
    'rate_limit': lambda f: f.rest('*', 'rate_limit', retry_after=0.2),
    'scramble': lambda f: f.scramble_ws('all', duplicate=0.3, reorder=0.3),
    'ws_stall_public': lambda f: f.stall_ws('public', seconds=None),
    'ws_stall_private': lambda f: f.stall_ws('private', seconds=0.5),
    'user_stream_expiry': lambda f: f.expire_user_streams(),
    'clock_jump': lambda f: f.clock_offset(f.rng.choice((-20000, 20000))),
}


async def _drop_private(faults):
    await faults.drop_ws_now('private')


async def _jump_clock(faults):
    faults.clock_offset(faults.rng.choice((-20000, 20000)))


#: Presets of the soak (tests/soakkit.py): REST faults on every order route,
#: lost answers, outages longer than the client's retries, and faults that land
#: while a request is in flight (``rest(..., during=...)``).
SOAK_PRESETS = {
    'create_timeout': lambda f: f.rest('create_order', 'accept_then_timeout'),
    'create_late': lambda f: f.rest('create_order', 'delay', seconds=1.15),
    'create_rate_limit': lambda f: f.rest('create_order', 'rate_limit', retry_after=0.2),
    'cancel_lost_answer': lambda f: f.rest('cancel_order', 'accept_then_reset'),
    'cancel_timeout': lambda f: f.rest('cancel_order', 'accept_then_timeout'),
    'cancel_reset': lambda f: f.rest('cancel_order', 'reset'),
    'cancel_5xx': lambda f: f.rest('cancel_order', 'server_error', status=503),
    'read_rate_limit': lambda f: f.rest('fetch_order', 'rate_limit', retry_after=0.2),
    # more failures in a row than the client retries a read (rest_retries=3)
    'read_outage': lambda f: f.rest('fetch_order', 'server_error', status=502, times=6),
    'inflight_create_ws_drop': lambda f: f.rest('create_order', 'delay', seconds=0.3,
                                                during=_drop_private),
    'inflight_cancel_ws_drop': lambda f: f.rest('cancel_order', 'accept_then_reset',
                                                during=_drop_private),
    'inflight_create_clock_jump': lambda f: f.rest('create_order', 'delay', seconds=0.2,
                                                   during=_jump_clock),
    # a cancel's answer lost while order queries fail: the retried cancel finds
    # no open order, and the lookup by client id fails past its retries
    'cancel_lost_read_outage': lambda f: (
        f.rest('fetch_order', 'server_error', status=502, times=6),
        f.rest('cancel_order', 'accept_then_reset')),
}
PRESETS.update(SOAK_PRESETS)

# What a preset holds while it lasts: two faults on the same stream channel (or
# the clock) at the same step would hide each other (a drop finds the sockets
# its twin closed already).
_HOLDS = {'ws_drop_public': ('public',), 'ws_stall_public': ('public',),
          'ws_drop_private': ('private',), 'ws_stall_private': ('private',),
          'user_stream_expiry': ('private',), 'ws_drop_all': ('public', 'private'),
          'inflight_create_ws_drop': ('private',), 'inflight_cancel_ws_drop': ('private',),
          'clock_jump': ('clock',), 'inflight_create_clock_jump': ('clock',)}


def _clash(name, group):
    held = set(_HOLDS.get(name, ()))
    return any(held & set(_HOLDS.get(other, ())) for other in group) or name in group


def overlapping_schedule(seed, steps, names=None, rate=0.3, most=3):
    """[(step, (preset, ...))], seeded: every preset at least once, up to
    ``most`` at the same step (never two on one stream channel or the
    clock), plus one more at each step with probability ``rate``."""
    rng = random.Random(seed)
    names = sorted(names or PRESETS)
    plan = {step: [] for step in range(steps)}
    for name in rng.sample(names, len(names)):
        free = [s for s in range(steps) if len(plan[s]) < most and not _clash(name, plan[s])]
        if not free:
            raise ValueError('%d presets do not fit in %d steps of at most %d'
                             % (len(names), steps, most))
        plan[rng.choice(free)].append(name)
    for step in range(steps):
        fits = [n for n in names if not _clash(n, plan[step])]
        if len(plan[step]) < most and fits and rng.random() < rate:
            plan[step].append(rng.choice(fits))
    return [(step, tuple(group)) for step, group in sorted(plan.items()) if group]


def random_schedule(seed, steps, rate=0.0, names=None):
    """[(step, preset name)], seeded: every preset once at a random step, plus
    one more at each other step with probability ``rate``."""
    rng = random.Random(seed)
    names = sorted(names or PRESETS)
    if len(names) > steps:
        raise ValueError('%d presets need at least as many steps, got %d' % (len(names), steps))
    order = rng.sample(names, len(names))
    plan = dict(zip(sorted(rng.sample(range(steps), len(names))), order))
    for step in range(steps):
        if step not in plan and rng.random() < rate:
            plan[step] = rng.choice(names)
    return sorted(plan.items())


def parse_spec(text):
    """'method:key=value,...' (CLI --fault) -> (method, kwargs, at seconds).

    ``method`` is a Faults method or a preset name; ``at=S`` schedules it S
    seconds after start. Values are numbers where they look like numbers.
    """
    method, _, rest = text.partition(':')
    kwargs, at = {}, 0.0
    for part in filter(None, rest.split(',')):
        key, sep, value = part.partition('=')
        if not sep:
            raise ValueError('fault options are key=value, got %r in %r' % (part, text))
        value = _number(value)
        if key == 'at':
            at = float(value)
        else:
            kwargs[key] = value
    if method not in PRESETS and method not in CLI_METHODS:
        raise ValueError('unknown fault %r; use one of: %s' % (
            method, ', '.join(sorted(set(PRESETS) | set(CLI_METHODS)))))
    return method, kwargs, at


CLI_METHODS = ('rest', 'drop_ws', 'stall_ws', 'scramble_ws', 'connection_lifetime',
               'clock_offset', 'expire_user_streams', 'restore_ws', 'hold_account_events',
               'release_account_events', 'hold_user_subscriptions',
               'release_user_subscriptions', 'clear')


def apply_spec(faults, method, kwargs):
    if method in PRESETS:
        return PRESETS[method](faults)
    return getattr(faults, method)(**kwargs)


def _number(text):
    if text.lower() == 'none':
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass    # not this kind: try the next, else keep the text
    return text
