#!/usr/bin/env python
"""Side by side with bt-ccxt-store on the same simulator (issue 13 part 4).

Three stacks trade the same upstream backtrader strategy against one
``BinanceSimulator`` each (Binance spot, BTC/USDT 1h, in this process,
step-mode clock paced by the benchmark: every bar lasts ``--bar-seconds`` of
wall time, half way through it the market clock moves half a bar so that a
forming candle exists and differs from the final one):

1. ``bt-ccxt-store`` (github Dave-Vallance/bt-ccxt-store, not on PyPI): its
   ``CCXTStore`` / ``getdata`` / ``getbroker`` with plain backtrader's
   ``Cerebro``; its ccxt is pointed at the simulator by its ``config['urls']``.
   Given by ``--btccxt-path`` (a checkout outside the repo); skipped, and said
   so in the JSON, when absent. Used as is: no patch was needed on Python 3.11.
2. our generic ccxt tier: ``run_live('ccxt:binance', ...)``;
3. our native Binance tier: ``run_live('binance', ...)``.

Per stack (facts counted at the simulator or from what ``next()`` saw):

- ``rest_calls_per_bar``: HTTP requests the simulator served while bars pass
  with nothing to do (WebSocket handshakes apart), per bar at this pace, and
  per second (a polling stack's count grows with the bar's length: the
  per-hour figure is that rate times 3600);
- ``bar_latency_ms``: the simulator closes a bar (``step()`` called) ->
  ``next()`` runs on that bar; bars ``next()`` had before they closed are
  counted in ``bars_seen_before_close`` instead;
- ``order_round_trip_ms``: ``buy()`` (market, 0.01 BTC) -> ``notify_order``
  Completed;
- ``partial_bars``: bars given to ``next()`` whose OHLCV differ from the final
  candle (a forming candle handed out as a bar);
- ``duplicate_orders``: with the simulator's ``create_lost_answer`` fault (the
  create is accepted, the answer lost: docs/faults.md) on one ``buy()``: orders
  the exchange holds minus orders the strategy placed.

The requests are counted by the simulator's own fault middleware (a
zero-second ``delay`` rule on every route, ``sim/faults.py``): nothing in
``sim/`` is edited.

    python benchmarks/bench_vs_btccxt.py [--quick] [--btccxt-path /work/competitors/bt-ccxt-store]
"""
import argparse
import calendar
import collections
import hashlib
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import backtrader as bt  # noqa: E402
import backtrader_live as btl  # noqa: E402
from backtrader_live.sim import (BinanceSimulator, DEFAULT_API_KEY,  # noqa: E402
                                 DEFAULT_API_SECRET)

SIZE = 0.01
HOUR_MS = 3600000
STACKS = ('bt-ccxt-store', 'generic', 'native')
# ccxt.pro's Binance sockets on the simulator (docs/exchanges.md, tests/generickit.py)
GENERIC_WS_URLS = {'spot': '/stream', 'inverse': '/dapi/ws', 'ws-api.spot': '/ws-api/v3'}
WS_PATHS = ('/ws', '/stream', '/dapi/ws')
# bt-ccxt-store: how long an order may take before the next bar is closed
# (ours complete in milliseconds; its broker only looks when a bar arrives)
GRACE_S = 0.5


class Rec:
    """What the strategy saw and did (written by Cerebro's thread)."""

    def __init__(self):
        self.bars = []           # (open ms, o, h, l, c, v, perf_counter in next())
        self.action = None       # 'buy' on the next bar, 'stop' (bt-ccxt-store)
        self.placed = 0          # buy() calls
        self.orders = []         # {'t_buy', 't_done', 'status'}
        self.lock = threading.Lock()


class Bench(bt.Strategy):
    """Upstream backtrader: record every bar, buy when the benchmark says."""

    params = (('rec', None),)

    def next(self):
        t = time.perf_counter()
        rec, d = self.p.rec, self.data
        ms = calendar.timegm(d.datetime.datetime(0).timetuple()) * 1000     # UTC, naive
        action, rec.action = rec.action, None
        if action == 'buy':
            rec.placed += 1
            entry = {'t_buy': time.perf_counter(), 't_done': None, 'status': None}
            order = self.buy(size=SIZE)
            if order is not None:        # bt-ccxt-store returns None when its create failed
                entry['ref'] = order.ref
            rec.orders.append(entry)
        elif action == 'stop':
            self.env.runstop()
        with rec.lock:
            rec.bars.append((ms, d.open[0], d.high[0], d.low[0], d.close[0], d.volume[0], t))

    def notify_order(self, order):
        t = time.perf_counter()
        for entry in self.p.rec.orders:
            if entry.get('ref') == order.ref and entry['t_done'] is None:
                if order.status in (order.Completed, order.Canceled, order.Rejected,
                                    order.Margin, order.Expired):
                    entry['t_done'], entry['status'] = t, order.getstatusname()


# -- the three stacks: start() -> the thread running Cerebro; the 'stop' action ends it
def _ccxt_urls(base_url):
    """ccxt.binance's urls with every https:// host replaced by the simulator's."""
    import ccxt
    api = {k: re.sub(r'^https://[^/]+', base_url, v) if isinstance(v, str) else v
           for k, v in ccxt.binance().urls['api'].items()}
    return {'api': api}


def start_btccxt(sim, rec, path):
    sys.path.insert(0, path)
    from ccxtbt import CCXTStore
    CCXTStore._singleton = None          # its store is a process-wide singleton
    config = {'apiKey': DEFAULT_API_KEY, 'secret': DEFAULT_API_SECRET,
              'enableRateLimit': True, 'urls': _ccxt_urls(sim.base_url),
              'options': {'fetchCurrencies': False}}     # no sapi probes (simulator has none)
    store = CCXTStore(exchange='binance', currency='USDT', config=config, retries=5)
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.setbroker(store.getbroker())
    cerebro.adddata(store.getdata(dataname='BTC/USDT', name='BTC/USDT',
                                  timeframe=bt.TimeFrame.Minutes, compression=60,
                                  ohlcv_limit=5))
    cerebro.addstrategy(Bench, rec=rec)
    thread = threading.Thread(target=cerebro.run, name='bench-btccxt', daemon=True)
    thread.start()
    C.eventually(lambda: len(rec.bars) >= 5, 30)     # its first request: ohlcv_limit bars
    return thread


def _start_ours(sim, rec, exchange, store_kwargs):
    live = C.LiveThread(btl.Cerebro(stdstats=False), exchange, 'BTC/USDT', '1h', Bench,
                        endpoint=sim.base_url, apikey=DEFAULT_API_KEY,
                        secret=DEFAULT_API_SECRET, paper_trading=False, backfill_bars=5,
                        max_bars=None, strategy_params={'rec': rec},     # runstop() ends it
                        store_kwargs=store_kwargs).start()
    sim.wait_subscribed('btcusdt@kline_1h', timeout=20)
    sim.wait_user_subscribed(timeout=20)
    C.eventually(lambda: len(rec.bars) >= 5 or live.error, 30)
    return live.thread


def start_generic(sim, rec, path=None):
    return _start_ours(sim, rec, 'ccxt:binance', {'ws_urls': GENERIC_WS_URLS})


def start_native(sim, rec, path=None):
    return _start_ours(sim, rec, 'binance', None)


STARTERS = {'bt-ccxt-store': start_btccxt, 'generic': start_generic, 'native': start_native}


# -- driving one stack ----------------------------------------------------------------------
class Counter:
    """Every HTTP request the simulator serves, by path (its fault middleware:
    a zero-second delay on every route; ``applied`` keeps the paths)."""

    def __init__(self, sim):
        self.sim = sim
        # the simulator keeps the last 1,000 faults: room for every request of a run
        sim.faults.applied = collections.deque(maxlen=1_000_000)
        self.rule = sim.faults.rest('*', 'delay', seconds=0.0, times=None)
        self.taken = 0

    def take(self):
        """{path: count} of REST requests since the last take (handshakes apart)."""
        applied = list(self.sim.faults.applied)[self.taken:]   # appended on the loop thread
        self.taken += len(applied)
        paths = collections.Counter(d.split('?')[0] for what, d in applied
                                    if what == 'rest delay')
        return {p: n for p, n in paths.items() if not p.split(' ', 1)[1].startswith(WS_PATHS)}


def close_bar(sim, rec, bar_s, closes, wait_for_bar):
    """One bar: half its wall time, the market half way through it, the other
    half, then close it; wait (bounded) until ``next()`` has it."""
    time.sleep(bar_s / 2)
    sim.advance(HOUR_MS / 2000)
    time.sleep(bar_s / 2)
    t_close = time.perf_counter()
    rows = sim.step()
    closes.extend((row[0], t_close) for row in rows)
    if wait_for_bar and rows:
        C.eventually(lambda: any(b[0] == rows[-1][0] for b in list(rec.bars)), 15)
    elif rows:
        # bt-ccxt-store: its next poll hands out the bar that just opened;
        # an order asked for after that goes on the bar after (bounded wait)
        _wait(lambda: any(b[0] > rows[-1][0] for b in list(rec.bars)), 5)


def order_done(rec, n):
    """The ``n``-th order is placed and ended (Completed, or refused)."""
    return len(rec.orders) >= n and rec.orders[n - 1]['t_done'] is not None


def settle_order(sim, rec, n, args, closes, ours, most=3):
    """Wait until order ``n`` ended. bt-ccxt-store looks at its orders only
    when a new bar reaches Cerebro: after a grace of GRACE_S bars go on
    (``most`` at most) until it does. Returns the bars closed meanwhile."""
    for extra in range(most + 1):
        if _wait(lambda: order_done(rec, n), 10.0 if ours else GRACE_S):
            return extra
        if extra < most:
            close_bar(sim, rec, args.bar_seconds, closes, ours)
    return None


def drive(sim, stack, args, path):
    rec, closes = Rec(), []
    counter = Counter(sim)
    thread = STARTERS[stack](sim, rec, path)
    ours = stack != 'bt-ccxt-store'
    counter.take()
    C.note('%s: %d bars of history, idle bars', stack, len(rec.bars))
    t0 = time.perf_counter()
    for _ in range(args.bars):
        close_bar(sim, rec, args.bar_seconds, closes, ours)
    idle_s = time.perf_counter() - t0
    idle = counter.take()
    C.note('%s: orders', stack)
    extra_bars = []
    for n in range(1, args.orders + 1):
        rec.action = 'buy'
        close_bar(sim, rec, args.bar_seconds, closes, ours)
        extra_bars.append(settle_order(sim, rec, n, args, closes, ours))
    before = len(sim.orders())
    sim.faults.clear()                              # the counter off: the fault rule acts
    fault = sim.faults.rest('create_order', 'accept_then_reset')
    placed = rec.placed
    C.note('%s: a lost create answer', stack)
    rec.action = 'buy'
    close_bar(sim, rec, args.bar_seconds, closes, ours)
    extra_bars.append(settle_order(sim, rec, args.orders + 1, args, closes, ours))
    held = len(sim.orders()) - before
    rec.action = 'stop'
    C.note('%s: stop', stack)
    close_bar(sim, rec, args.bar_seconds, closes, ours)
    thread.join(60)
    return rec, closes, {
        'idle_bars': args.bars, 'idle_seconds': round(idle_s, 3), 'idle_requests': idle,
        'bars_until_completed': extra_bars,
        'lost_answer': {'fault_fired': fault.hits, 'placed': rec.placed - placed,
                        'exchange_holds': held,
                        'duplicates': max(0, held - (rec.placed - placed)),
                        'final_status': rec.orders[-1]['status'] if rec.orders else None},
        'stopped': not thread.is_alive()}


def _wait(cond, timeout):
    try:
        C.eventually(cond, timeout, 0.005)
        return True
    except TimeoutError:
        return False


# -- figures from the records -----------------------------------------------------------------
def final_candles(sim):
    """{open ms: (o, h, l, c, v)} of every closed candle of the run's span."""
    feed = sim.clock.feeds['BTCUSDT']
    rows, last_closed = sim._call(lambda: feed.bars('1h', sim.clock.now,
                                                    start=sim.clock.now - 200 * HOUR_MS))
    rows = rows if last_closed else rows[:-1]
    return {int(r[0]): tuple(float(x) for x in r[1:6]) for r in rows}


def _same(bar, final):
    return all(abs(a - b) <= 1e-9 * max(1.0, abs(b)) for a, b in zip(bar[1:5], final[:4])) \
        and abs(bar[5] - final[4]) <= 1e-6 * max(1.0, final[4])


def figures(sim, rec, closes, facts):
    finals = final_candles(sim)
    bars = list(rec.bars)
    partial = [b[0] for b in bars if b[0] in finals and not _same(b, finals[b[0]])]
    first_seen = {}
    for b in bars:
        first_seen.setdefault(b[0], b[6])
    latency, early = [], 0
    for ms, t_close in closes:
        t_next = first_seen.get(ms)
        if t_next is None:
            continue
        if t_next < t_close:
            early += 1
        else:
            latency.append(t_next - t_close)
    idle_total = sum(facts['idle_requests'].values())
    trips = [o['t_done'] - o['t_buy'] for o in rec.orders[:-1] if o['status'] == 'Completed']
    return {
        'rest_calls_per_bar': round(idle_total / facts['idle_bars'], 2),
        'rest_calls_per_second': round(idle_total / facts['idle_seconds'], 2),
        'rest_calls_per_1h_bar_extrapolated': round(3600 * idle_total / facts['idle_seconds']),
        'idle_requests_by_path': facts['idle_requests'],
        'bar_latency_ms': C.stats(latency),
        'bars_closed': len(closes), 'bars_seen_before_close': early,
        'order_round_trip_ms': C.stats(trips),
        'bars_until_completed': facts['bars_until_completed'],
        'bars_delivered': len(bars), 'bars_verified': sum(b[0] in finals for b in bars),
        'partial_bars': len(partial),
        'duplicate_orders': facts['lost_answer']['duplicates'],
        'lost_answer': facts['lost_answer'], 'stopped': facts['stopped']}


def run_stack(stack, args, path=None):
    C.note('%s: start', stack)
    with BinanceSimulator(speed=None, start_index=600, balances={'USDT': 100000.0}) as sim:
        rec, closes, facts = drive(sim, stack, args, path)
        out = figures(sim, rec, closes, facts)
    C.note('%s: %s', stack, {k: out[k] for k in ('rest_calls_per_bar', 'partial_bars',
                                                  'duplicate_orders')})
    return out


def btccxt_identity(path):
    """Which bt-ccxt-store ran: its path and a digest of its three modules."""
    digest = hashlib.sha256()
    for name in ('ccxtstore.py', 'ccxtbroker.py', 'ccxtfeed.py'):
        with open(os.path.join(path, 'ccxtbt', name), 'rb') as fh:
            digest.update(fh.read())
    return {'path': path, 'sha256_of_ccxtbt': digest.hexdigest()[:16]}


def main(argv=None):
    p = C.add_common_args(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    p.add_argument('--btccxt-path', default='/work/competitors/bt-ccxt-store',
                   help='a checkout of github.com/Dave-Vallance/bt-ccxt-store (not on PyPI)')
    p.add_argument('--stacks', default=','.join(STACKS), help='comma-separated, of: %s'
                   % ', '.join(STACKS))
    p.add_argument('--bars', type=int, default=8, help='idle bars (REST count, bar latency)')
    p.add_argument('--orders', type=int, default=3, help='market orders, one per bar')
    p.add_argument('--bar-seconds', type=float, default=2.0, help='wall seconds per bar')
    args = p.parse_args(argv)
    stacks = [s for s in args.stacks.split(',') if s]
    unknown = [s for s in stacks if s not in STACKS]
    if unknown:
        p.error('unknown stack(s) %s; valid: %s' % (unknown, ', '.join(STACKS)))
    if args.quick:
        args.bars, args.orders, args.bar_seconds = 2, 1, 0.5
    C.quiet_logs()
    load, waited, _ = C.wait_for_quiet(args.max_load, 0 if args.quick else args.max_wait)
    result = {'benchmark': 'vs_btccxt', 'quick': args.quick, 'machine': C.machine(),
              'load_at_start': load, 'waited_for_quiet_s': waited,
              'setup': 'BinanceSimulator (spot, BTC/USDT 1h, step clock paced by the '
                       'benchmark: %.1f s per bar, half a bar of market time in the middle) '
                       'in this process; an upstream backtrader strategy on three stacks'
                       % args.bar_seconds,
              'params': {'bars': args.bars, 'orders': args.orders,
                         'bar_seconds': args.bar_seconds},
              'stacks': {}, 'skipped': {}}
    for stack in stacks:
        if stack == 'bt-ccxt-store' and not os.path.isfile(
                os.path.join(args.btccxt_path, 'ccxtbt', 'ccxtstore.py')):
            result['skipped'][stack] = ('no bt-ccxt-store checkout at %s (github '
                                        'Dave-Vallance/bt-ccxt-store; pass --btccxt-path)'
                                        % args.btccxt_path)
            C.note('skipped %s: %s', stack, result['skipped'][stack])
            continue
        if stack == 'bt-ccxt-store':
            result['btccxt'] = btccxt_identity(args.btccxt_path)
        result['stacks'][stack] = run_stack(stack, args, args.btccxt_path)
    result['summary'] = {stack: {
        'rest_calls_per_bar': f['rest_calls_per_bar'],
        'bar_latency_p50_ms': f['bar_latency_ms'].get('p50'),
        'bars_seen_before_close': f['bars_seen_before_close'],
        'order_round_trip_p50_ms': f['order_round_trip_ms'].get('p50'),
        'bars_until_completed': f['bars_until_completed'],
        'partial_bars': f['partial_bars'], 'duplicate_orders': f['duplicate_orders']}
        for stack, f in result['stacks'].items()}
    C.emit(result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
