"""A seeded random-fault soak: one venue, one seed, many bars, many faults.

:func:`soak` runs :class:`SoakStrategy` (an upstream backtrader strategy that
trades on every live bar: market, limit, stop and stop-limit orders on both
sides, cancels and ``close()``) through ``run_live`` against a step-mode
simulator, while a seeded schedule (``sim.faults.overlapping_schedule``)
injects several faults at once: REST faults on the create, cancel and query
routes (delays, resets, 5xx, rate limits, lost answers, outages longer than the
retries), stream drops, stalls, duplicates and reorders, clock jumps, and faults
that land while a request is in flight. Some bars before the end every fault is
healed; on the last bar the strategy cancels what rests and closes.

The invariants (:mod:`soakcheck`) compare the simulator's own records with what
the strategy was told. :func:`soak` never raises for a broken invariant: it
returns a report (figures + ``violations``) so a long run (benchmarks/soak.py)
can tell every failure with its venue, seed and a reproduction.
"""
import collections
import random
import re
import time
import traceback

import backtrader

import backtrader_live as btl
from backtrader_live.sim.faults import PRESETS, apply_spec, overlapping_schedule
import soakcheck
from helpers import eventually
from livekit import LiveRun, Recorder
from venues import SIMS, STEP
from venues import VENUES as _VENUES

Venue = collections.namedtuple(
    'Venue', 'exchange market_type symbol topic market step sizes spot sim_options '
             'clock_capped')
# sizes: multiples of the market's step the strategy picks from (futures sizes
# that are not sums of "round" floats: 0.009 - 0.002 is 0.006999... in floats)
SIZES = {'binance-spot': (300, 400, 500), 'binance-usdm': (2, 3, 7, 9),
         'binance-coinm': (1, 2, 3), 'bybit-spot': (300, 400, 500),
         'bybit-linear': (2, 3, 7, 9), 'bybit-inverse': (100, 200, 300)}
# The soak's simulators keep their default balances, except that Bybit's
# unified wallet sums spot and contract coins: no BTC on the contract side,
# so the spot position starts flat.
SIM_OPTIONS = {'bybit-spot': {'contract_balances': {'USDT': 10000}}}
# clock_capped: ccxt caps a COIN-M kline query at the client's clock (endTime =
# min(now, ...)); in step mode the simulator's market runs hours ahead of the
# wall clock, so a gap fill right after a reconnect cannot see the bar that
# closed meanwhile (the next bar's hole query can). Not so live, where market
# time is wall time: on that venue the soak steps only once the market stream
# is back, so bars close while connected.
CLOCK_CAPPED = {'binance-coinm'}
# The one venue table (tests/venues.py), with the soak's columns.
VENUES = {v: Venue(*row[:5], step=STEP[v], sizes=SIZES[v], spot=row[1] == 'spot',
                   sim_options=SIM_OPTIONS.get(v, {}), clock_capped=v in CLOCK_CAPPED)
          for v, row in _VENUES.items()}
# An unanswered create settles in ~1.1 s, a silent stream is given up after 1 s.
FAST = {'recv_window': 600, 'timeout': 1.0, 'stream_heartbeat': 0.3,
        'stream_timeout': 1.0}
BACKFILL = 5
HEAL_BARS = 4          # bars before the end: every fault healed
QUIET_BARS = 2         # no new fault in the last bars before the heal
PROBE_BARS = 3         # the first live bars: buy, sell, close() without faults
KINDS = ('market', 'market', 'limit', 'stop', 'stop_limit', 'close')


def presets_for(venue):
    """Every preset that applies to the venue (Bybit's private streams do not expire)."""
    names = sorted(PRESETS)
    if VENUES[venue].exchange == 'bybit':
        names.remove('user_stream_expiry')
    return names


# In the suite every venue gets the faults that broke runs before (lost
# answers, outages past the retries, faults in flight, overlaps) plus its share
# of the others, so that the six venues together inject every preset.
# A cancel's answer lost while order queries fail past their retries is a
# short soak of its own (READ_OUTAGE: defect 1 of issue 11 ended runs there).
CORE = ('cancel_lost_answer', 'create_lost_answer', 'inflight_create_ws_drop',
        'inflight_cancel_ws_drop', 'ws_drop_all', 'scramble', 'clock_jump', 'rate_limit')
READ_OUTAGE = ('cancel_lost_read_outage', 'read_outage', 'cancel_lost_answer',
               'inflight_cancel_ws_drop')


def suite_presets(venue):
    """The venue's presets for the short soak in the suite."""
    rest = [n for n in sorted(PRESETS) if n not in CORE and n not in READ_OUTAGE]
    share = rest[sorted(VENUES).index(venue)::len(VENUES)]
    return [n for n in presets_for(venue) if n in CORE or n in share]


class SoakStrategy(backtrader.Strategy):
    """Trades on every live bar; records every notification in ``rec``."""

    params = (('rec', None), ('seed', 0), ('venue', None), ('live_bars', 0),
              ('exchange_position', None), ('probe', True))

    def __init__(self):
        rec = self.p.rec
        rec.strategy = self
        rec.created = {}           # ref -> (live bar, kind, side, size)
        rec.seen = {}              # ref -> {'cid', 'statuses', 'fills', 'executed'}
        self.venue = VENUES[self.p.venue]
        self.resting = []

    # -- what the strategy is told -------------------------------------------------------
    def notify_order(self, order):
        seen = self.p.rec.seen.setdefault(order.ref, {'cid': None, 'statuses': [], 'fills': []})
        seen['cid'] = order.info.get('client_id') or seen['cid']
        seen['statuses'].append(order.getstatusname())
        # the executions since the previous notification of this order
        seen['fills'].extend((bit.size, bit.price) for bit in order.executed.iterpending())
        seen['executed'] = order.executed.size
        seen['reason'] = order.info.get('reject_reason')

    def notify_data(self, data, status, *args, **kwargs):
        self.p.rec.data_status.append(data._getstatusname(status))

    def notify_store(self, msg, *args, **kwargs):
        self.p.rec.store_msgs.append((msg,) + args)

    # -- trading -------------------------------------------------------------------------
    def next(self):
        rec = self.p.rec
        live = len(rec.bars) - BACKFILL
        rec.positions.append(self.position.size)
        if 0 <= live:
            self.act(live)
        # Last: a test waiting for this bar knows the actions have been taken.
        rec.bars.append((self.data.datetime.datetime(0), self.data.close[0]))

    def act(self, bar):
        # The last three bars: cancel what rests; close (nothing else may fill
        # meanwhile); the final bar only confirms.
        last = self.p.live_bars - 2
        if bar == last - 1:
            return self.cancel_all()
        if bar == last:
            return self.finish(bar)
        if bar > last:
            return None
        if bar < PROBE_BARS and self.p.probe:
            return self.probe(bar)
        if bar == PROBE_BARS and self.p.probe and self.p.exchange_position is not None:
            self.p.rec.probe = (self.position.size, self.p.exchange_position())
        rng = random.Random('%s:%s:%d' % (self.p.seed, self.p.venue, bar))
        self.resting = [o for o in self.resting if o.alive()]
        for order in self.resting[:max(0, len(self.resting) - 1)][:2]:
            self.cancel(order)          # a cancel (or two) on most bars
        close = self.data.close[0]
        # one order that rests (cancelled on a later bar), one of a random kind
        self.place(bar, 'limit_far', 'buy', self.size(rng), close * 0.9)
        kind, side = rng.choice(KINDS), rng.choice(('buy', 'sell'))
        if kind == 'close':
            if self.position.size and self.sellable() >= self.position.size:
                self.track(bar, 'close', self.close())
                return None
            kind = 'market'
        return self.place(bar, kind, side, self.size(rng), close)

    def probe(self, bar):
        """Before any fault: buy 9 steps, sell 2, close() (in floats 0.009 -
        0.002 is 0.006999...: the close must still leave nothing open)."""
        if bar == 2:
            return self.track(bar, 'close', self.close())
        size = float(self.venue.step * (9 if bar == 0 else 2) * (100 if self.venue.spot else 1))
        return self.place(bar, 'market', 'buy' if bar == 0 else 'sell', size, 0.0)

    def cancel_all(self):
        for order in [o for o in self.resting if o.alive()]:
            self.cancel(order)

    def finish(self, bar):
        """Cancel what may still rest, then close what is held."""
        self.cancel_all()
        if self.position.size:
            self.track(bar, 'close', self.close())

    def size(self, rng):
        return float(self.venue.step * rng.choice(self.venue.sizes))

    def sellable(self):
        """Spot: the coins held and not promised to a resting sell."""
        if not self.venue.spot:
            return float('inf')
        promised = sum(abs(o.executed.remsize) for o in self.resting
                       if o.alive() and o.issell())
        return self.position.size - promised

    def place(self, bar, kind, side, size, close):
        if side == 'sell' and self.sellable() < size:
            side = 'buy'
        up = 1 if side == 'buy' else -1
        args = {'market': dict(exectype=btl.Order.Market),
                'limit_far': dict(exectype=btl.Order.Limit, price=close),
                'limit': dict(exectype=btl.Order.Limit, price=close * (1 - up * 0.002)),
                'stop': dict(exectype=btl.Order.Stop, price=close * (1 + up * 0.003)),
                'stop_limit': dict(exectype=btl.Order.StopLimit, price=close * (1 + up * 0.003),
                                   plimit=close * (1 + up * 0.005))}[kind]
        order = getattr(self, side)(size=size, **args)
        self.track(bar, kind, order)
        if kind != 'market' and order is not None:
            self.resting.append(order)
        return order

    def track(self, bar, kind, order):
        if order is not None:
            self.p.rec.created[order.ref] = (bar, kind, 'buy' if order.isbuy() else 'sell',
                                             order.created.size)


class Injected:
    """One preset applied at a step, and how to tell that it fired."""

    def __init__(self, step, name, faults):
        before = list(faults.rules)
        self.step, self.name = step, name
        self.counts = collections.Counter(faults.counts)
        self.result = apply_spec(faults, name, {})
        self.rules = [r for r in faults.rules if not any(r is b for b in before)]

    def fired(self, faults):
        """'' if the fault did what it is for, else why not."""
        idle = [r for r in self.rules if r.hits < 1]
        if idle:
            return 'rule(s) never hit: %s' % idle
        if self.name == 'scramble':
            done = sum(faults.counts[k] - self.counts[k] for k in ('ws duplicated',
                                                                    'ws reordered'))
            return '' if done else 'no stream message duplicated or reordered'
        if isinstance(self.result, int) and self.result < 1:
            return 'closed/expired no connection (%r)' % self.result
        return ''


# The channel a stream preset needs open to do anything.
_NEEDS = {'ws_drop_public': 'public', 'ws_stall_public': 'public',
          'ws_drop_private': 'private', 'ws_stall_private': 'private',
          'user_stream_expiry': 'private', 'ws_drop_all': 'public'}


class Soak:
    """One soak run: venue, seed, live bars; :meth:`run` returns the report."""

    def __init__(self, venue, seed, bars=36, rate=0.3, most=3, without=(), names=None,
                 probe=True):
        self.venue, self.seed, self.bars, self.probe = venue, seed, bars, probe
        self.backfill = BACKFILL
        self.v = VENUES[venue]
        self.heal_at = bars - HEAL_BARS
        lead = PROBE_BARS + 1 if probe else 1      # fault-free bars first
        span = self.heal_at - QUIET_BARS - lead
        self.names = [n for n in names or presets_for(venue) if n not in without]
        self.without = sorted(without)
        self.schedule = [(lead + step, group) for step, group in
                         overlapping_schedule(seed, span, self.names, rate, most)]
        self.injected = []
        self.violations = []
        self.step_seconds = []      # (seconds, live bar)
        self.sim = self.run_ = None

    def fail(self, invariant, detail):
        after_death = invariant != 'run death' and self.died
        self.violations.append({'invariant': invariant, 'venue': self.venue,
                                'seed': self.seed, 'bars': self.bars,
                                'after_run_death': after_death, 'detail': detail})

    # -- running -------------------------------------------------------------------------
    def run(self):
        start = time.monotonic()
        options = dict(self.v.sim_options, speed=None, start_index=600, seed=self.seed)
        self.sim = SIMS[self.v.exchange](**options).start()
        try:
            self._drive()
            if not self._thread_alive():
                soakcheck.check_all(self, died=self.died)
        finally:
            self.sim.stop()
        return self.report(time.monotonic() - start)

    def _live_run(self):
        v = self.v
        run = LiveRun(self.sim, exchange=v.exchange, symbol=v.symbol, market_type=v.market_type,
                      topic=v.topic, user_market=v.market, strategy=SoakStrategy,
                      backfill_bars=BACKFILL, max_bars=self.bars, store_kwargs=dict(FAST),
                      strategy_params=None)
        run._opts['strategy_params'].update(
            seed=self.seed, venue=self.venue, live_bars=self.bars, probe=self.probe,
            exchange_position=lambda: soakcheck.exchange_position(self))
        return run

    def _drive(self):
        self.run_ = run = self._live_run()
        run.start()
        plan = dict(self.schedule)
        for step in range(self.bars):
            if step in plan:
                self._inject(step, plan[step])
            if step == self.heal_at:
                self._heal()
            if not self._step(step):
                break
        run._thread.join(30)
        if self._thread_alive():
            self.fail('run ended', 'run_live did not return 30 s after the last bar')
        elif run.error is not None and not self.died:
            self._death(self.bars)

    @property
    def died(self):
        return any(v['invariant'] == 'run death' for v in self.violations)

    def _death(self, step):
        exc = self.run_.error
        where = [
            '%s:%d %s' % (f.filename.split('backtrader_live/')[-1], f.lineno, f.name)
            for f in traceback.extract_tb(exc.__traceback__) if 'backtrader_live' in f.filename
        ] if exc is not None else []
        self.fail('run death', 'run_live ended at live bar %d: %s: %s; raised from %s; '
                  'faults injected at bars %d-%d: %s; REST faults still armed: %s' % (
                      step, type(exc).__name__, exc, ' <- '.join(reversed(where[-4:])),
                      step - 1, step, [(s, list(g)) for s, g in self.schedule
                                       if step - 1 <= s <= step],
                      ['%s (bar %d): %r' % (i.name, i.step, r) for i in self.injected
                       for r in i.rules if r.hits and not r.spent]))

    def _thread_alive(self):
        return self.run_._thread.is_alive()

    def _step(self, step):
        started = time.monotonic()
        try:
            return self._step_once(step)
        finally:
            self.step_seconds.append((round(time.monotonic() - started, 2), step))

    def _step_once(self, step):
        run = self.run_
        seen = len(run.rec.bars)
        if self.v.clock_capped:
            try:
                eventually(self._market_stream_back, 10)
            except AssertionError:
                self.fail('progress', 'live bar %d: the market stream is not back within '
                          '10 s; faults: %s' % (step, self._recent(step)))
        self.sim.step()
        try:
            eventually(lambda: len(run.rec.bars) > seen or run.error
                       or not self._thread_alive(), 15)
        except AssertionError:
            self.fail('progress', 'live bar %d not delivered within 15 s (%d bars seen); '
                      'faults: %s' % (step, len(run.rec.bars), self._recent(step)))
        try:
            eventually(run._settled, 15)
        except AssertionError:
            broker = run.rec.strategy.broker
            self.fail('progress', 'live bar %d: orders not settled within 15 s: awaiting '
                      'fills %s, market orders open %s; faults: %s' % (
                          step, [broker._book.client_id(o) for o in broker._book.awaiting()],
                          [broker._book.client_id(o) for o in broker._book.alive()
                           if o.exectype == btl.Order.Market], self._recent(step)))
        if run.error is not None or not self._thread_alive():
            if step < self.bars - 1 or run.error is not None:
                self._death(step)
            return False
        return True

    def _market_stream_back(self):
        """A market socket subscribed to the topic, none stalled, the client's up."""
        faults = self.sim.faults

        def stalled():
            return any(not ws.closed and e[0] == 'public' and time.monotonic() < e[4]
                       for ws, e in list(faults._sockets.items()))
        return (not self.sim._call(stalled)
                and self.sim._call(self.sim._subscriber_count, self.v.topic) >= 1
                and all(getattr(d, '_stream_up', True) for d in self.run_.rec.strategy.datas))

    def _recent(self, step):
        return [(s, list(g)) for s, g in self.schedule if step - 2 <= s <= step]

    def _inject(self, step, names):
        faults = self.sim.faults
        for name in names:
            channel = _NEEDS.get(name)
            if channel:     # a drop with nothing to drop would prove nothing
                try:
                    eventually(lambda: faults.connections(channel) > 0, 10)
                except AssertionError:
                    pass    # reported by fired(): nothing was closed
            try:
                self.injected.append(Injected(step, name, faults))
            except NotImplementedError as exc:     # pragma: no cover - excluded per venue
                self.fail('fault fired', '%s at step %d: %s' % (name, step, exc))

    def _heal(self):
        """Every fault must have fired; then all healed, streams and orders settled."""
        faults = self.sim.faults
        self._provoke_reads()
        try:
            eventually(lambda: all(not i.fired(faults) for i in self.injected), 15)
        except AssertionError:
            for inj in self.injected:
                why = inj.fired(faults)
                if why:
                    self.fail('fault fired', '%s injected before live bar %d: %s'
                              % (inj.name, inj.step, why))
        faults.clear()
        try:
            self.sim.wait_user_subscribed(timeout=10, market=self.v.market)
            broker = self.run_.rec.strategy.broker
            eventually(lambda: broker.store.user_stream_live and broker.settled(), 15)
        except (AssertionError, TimeoutError) as exc:
            self.fail('progress', 'not settled 15 s after the heal: %s' % exc)

    def _provoke_reads(self):
        """Query and kline faults fire on recovery reads: a user-stream reconnect
        reconciles every open order, a market-stream reconnect backfills."""
        faults = self.sim.faults
        for call, channel in (('fetch_order', 'private'), ('klines', 'public')):
            idle = [r for i in self.injected for r in i.rules
                    if r.hits < 1 and r.call == call]
            if idle and faults.connections(channel):
                faults.drop_ws(channel)

    # -- the report --------------------------------------------------------------------
    def report(self, seconds):
        rec = self.run_.rec if self.run_ else Recorder()
        seen = getattr(rec, 'seen', {})
        kinds = collections.Counter(i.name for i in self.injected)
        return {
            'venue': self.venue, 'seed': self.seed, 'live_bars': self.bars,
            'bars_seen': len(rec.bars), 'orders': len(getattr(rec, 'created', {})),
            'orders_on_exchange': getattr(self, 'exchange_orders', 0),
            'fills': sum(len(s['fills']) for s in seen.values()),
            'faults': len(self.injected), 'faults_by_kind': dict(sorted(kinds.items())),
            'overlapping_steps': sum(1 for _, g in self.schedule if len(g) > 1),
            'statuses': dict(collections.Counter(s['statuses'][-1] for s in seen.values())),
            # why orders were rejected, by kind of order (a rejection is no broken
            # invariant, but a supported order type always refused is a finding)
            'rejections': dict(collections.Counter(
                '%s: %s' % (getattr(rec, 'created', {}).get(ref, ('', '?'))[1],
                            _reason(s.get('reason')))
                for ref, s in seen.items() if s['statuses'][-1] == 'Rejected')),
            'run_deaths': sum(1 for v in self.violations if v['invariant'] == 'run death'),
            # spot: the position the final close() could not sell (worth less
            # than the minimum notional; soakcheck.unsellable), else 0
            'unsellable_at_end': getattr(self, 'unsellable', 0.0),
            'violations': self.violations,
            'schedule': [[step, list(group)] for step, group in self.schedule],
            'seconds': round(seconds, 1),
            'seconds_in_bars': round(sum(t for t, _ in self.step_seconds), 1),
            'slowest_bars': [[b, t, list(dict(self.schedule).get(b, ()))]
                             for t, b in sorted(self.step_seconds, reverse=True)[:3]],
            'reproduce': 'python benchmarks/soak.py --venues %s --seeds 1 --first-seed %d '
                         '--bars %d%s' % (self.venue, self.seed, self.bars, ''.join(
                             ' --without %s' % n for n in self.without)) + (
                                 ' --only %s' % ','.join(self.names)
                                 if self.names != [n for n in presets_for(self.venue)
                                                   if n not in self.without] else ''),
        }


def _reason(text):
    """A rejection reason without its ids and numbers, to count alike ones."""
    text = re.sub(r'btl[0-9a-f]+', '<cid>', str(text or ''))
    text = re.sub(r'http://\S+', '<url>', text)
    return re.sub(r'\d+(\.\d+)?(e-?\d+)?', 'N', text)[:120]


def soak(venue, seed, bars=36, **kwargs):
    """Run one soak; returns its report (``report['violations']`` empty if sound)."""
    return Soak(venue, seed, bars, **kwargs).run()
