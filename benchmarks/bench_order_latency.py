#!/usr/bin/env python
"""Order latency: ``strategy.buy()`` -> the exchange's acknowledgement -> Completed.

A real ``Cerebro.run_live`` (paper_trading=False) trades against a
``BinanceSimulator`` in step mode running in *another process* on loopback (as a
real exchange would be: it does not share our GIL). On each live bar the strategy
sends ``--burst`` market orders (alternating buy/sell 0.01 BTC) and records
``perf_counter()`` right before ``buy()``; ``notify_order`` records Completed.
Wrappers installed on the store/ccxt instances (benchmark only, the package is
unchanged) stamp the REST call, and the simulator process stamps its order
handler, so each order's time splits into:

- ``ours_before_send``: buy() -> store.create_order() (order, sizer, risk gate,
  rounding, order book, Submitted notification);
- ``ccxt_request``: create_order() -> HTTP send (ccxt: market lookup, params,
  HMAC signing, **the rate-limit throttle's sleep**);
- ``wire_http``: the HTTP round trip minus the simulator's handler (requests/
  urllib3, kernel loopback, aiohttp's HTTP parsing and writing);
- ``sim_handler``: the simulator's POST /api/v3/order handler (verify, match, flush
  the user-data events to their socket, JSON reply);
- ``ccxt_response``: response bytes -> create_order() returns (JSON, parse_order);
- ``ours_after_ack``: create_order() returned -> notify_order(Completed) (apply the
  REST answer's fills, notifications, next() returns, Cerebro's next round).

``ack`` = buy() -> create_order() returned (the exchange's answer is in our hands);
``completed`` = buy() -> notify_order(Completed). Runs with the store's
client-side rate limit on (``rate_limit=True``, the default: ccxt's budget spent
from a bucket, see ratelimit.py) and off, with one order per bar and with bursts
of several orders per bar.

    python benchmarks/bench_order_latency.py [--quick] [--orders 600] [--burst 3]
"""
import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import backtrader as bt  # noqa: E402
import backtrader_live as btl  # noqa: E402
from backtrader_live.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET  # noqa: E402
from backtrader_live.stores.binance import BinanceStore  # noqa: E402

SIZE = 0.01
GC = C.GcPauses()


class Recorder:
    def __init__(self):
        self.live = False
        self.burst = 1
        self.records = []          # one dict per order
        self.by_ref = {}
        self.cur = None
        self.pending = 0
        self.bar_done = threading.Event()
        self.bars = 0
        self.errors = []


class OrderBench(bt.Strategy):
    """An upstream backtrader strategy: ``burst`` market orders per live bar."""

    params = (('rec', None),)

    def next(self):
        rec = self.p.rec
        rec.bars += 1
        if not rec.live:
            return
        rec.pending = rec.burst
        for _ in range(rec.burst):
            buy = len(rec.records) % 2 == 0
            r = rec.cur = {'side': 'buy' if buy else 'sell', 'http': []}
            rec.records.append(r)
            r['t_buy'] = time.perf_counter()
            order = self.buy(size=SIZE) if buy else self.sell(size=SIZE)
            r['t_ret'] = time.perf_counter()
            rec.by_ref[order.ref] = r
            rec.cur = None

    def notify_order(self, order):
        t = time.perf_counter()
        rec = self.p.rec
        r = rec.by_ref.get(order.ref)
        if r is None:
            return
        if order.status == order.Accepted:
            r.setdefault('t_accepted', t)
        elif order.status == order.Completed:
            r['t_completed'] = t
            self._one_done(rec)
        elif order.status in (order.Rejected, order.Canceled, order.Margin, order.Expired):
            rec.errors.append((order.getstatusname(), order.info.get('reject_reason')))
            r['failed'] = True
            self._one_done(rec)

    @staticmethod
    def _one_done(rec):
        rec.pending -= 1
        if rec.pending <= 0:
            rec.bar_done.set()


def instrument(store, rec):
    """Stamp store.create_order and ccxt's HTTP fetch (instance attributes only)."""
    create_order = store.create_order
    fetch = store.exchange.fetch

    def timed_create_order(*args, **kwargs):
        r = rec.cur
        if r is not None:
            r['t_co_in'] = time.perf_counter()
            r['cid'] = (args[5] if len(args) > 5 else kwargs.get('params') or {}).get(
                store.CLIENT_ID_PARAM)
        try:
            return create_order(*args, **kwargs)
        finally:
            if r is not None:
                r['t_co_out'] = time.perf_counter()

    def timed_fetch(url, method='GET', headers=None, body=None):
        t0 = time.perf_counter()
        try:
            return fetch(url, method, headers, body)
        finally:
            r = rec.cur
            if r is not None:
                r['http'].append((method, url.split('?')[0].rsplit('/', 1)[-1], t0,
                                  time.perf_counter()))

    store.create_order = timed_create_order
    store.exchange.fetch = timed_fetch


def run_config(sim, label, orders, burst, rate_limit, warmup, gap=0.0):
    BinanceStore.forget_instances()
    store = BinanceStore.get_instance(apikey=DEFAULT_API_KEY, secret=DEFAULT_API_SECRET,
                                      testnet=True, market_type='spot', endpoint=sim.base_url,
                                      rate_limit=rate_limit)
    rec = Recorder()
    rec.burst = burst
    instrument(store, rec)
    cerebro = btl.Cerebro(stdstats=False)
    bars = (orders + warmup) // burst + 2
    run = C.LiveThread(cerebro, 'binance', 'BTC/USDT', '1h', OrderBench,
                       endpoint=sim.base_url, apikey=DEFAULT_API_KEY, secret=DEFAULT_API_SECRET,
                       paper_trading=False, backfill_bars=5, max_bars=bars + 1,
                       strategy_params={'rec': rec}).start()
    sim.wait_subscribed('btcusdt@kline_1h', 1, 20)
    sim.wait_user_subscribed(20)
    C.eventually(lambda: rec.bars >= 5 or run.error, 20)
    sim.order_stamps()       # forget anything before
    sim.gc_pauses()
    GC.take()
    rec.live = True
    for _ in range(bars):
        rec.bar_done.clear()
        if gap:
            time.sleep(gap)     # bars apart: ccxt's throttle window (10 ms) has passed
        sim.step()
        if not rec.bar_done.wait(10):
            raise RuntimeError('%s: orders of a bar did not complete: %s' % (label, rec.errors))
    sim.step()              # the last bar: run_live stops (max_bars)
    run.join(30)
    server = {cid: (t_in, t_out) for cid, t_in, t_out in sim.order_stamps()}
    out = summarize(label, rec, server, warmup, burst, rate_limit)
    out['gap_between_bars_ms'] = gap * 1000
    out['gc_pauses'] = {'client': GC.summary(), 'simulator': sim.gc_pauses()}
    return out


def summarize(label, rec, server, warmup, burst, rate_limit):
    keys = ('ack', 'completed', 'ours_before_send', 'ccxt_request', 'wire_http',
            'sim_handler', 'ccxt_response', 'ours_after_ack', 'in_process_total',
            'ours_total', 'ccxt_total', 'outside_process_total', 'http_round_trip')
    series = {k: [] for k in keys}
    missing = 0
    for r in rec.records[warmup:]:
        posts = [h for h in r['http'] if h[0] == 'POST']
        srv = server.get(r.get('cid'))
        if r.get('failed') or not posts or srv is None or 't_completed' not in r:
            missing += 1
            continue
        _, _, f0, f1 = posts[0]
        extra_http = sum(h[3] - h[2] for h in r['http'][1:])   # e.g. a fills query
        handler = srv[1] - srv[0]
        s = series
        s['ack'].append(r['t_co_out'] - r['t_buy'])
        s['completed'].append(r['t_completed'] - r['t_buy'])
        s['ours_before_send'].append(r['t_co_in'] - r['t_buy'])
        s['ccxt_request'].append(f0 - r['t_co_in'])
        s['http_round_trip'].append(f1 - f0)
        s['sim_handler'].append(handler)
        s['wire_http'].append(f1 - f0 - handler)
        s['ccxt_response'].append(r['t_co_out'] - f1)
        s['ours_after_ack'].append(r['t_completed'] - r['t_co_out'] - extra_http)
        outside = f1 - f0 + extra_http
        s['outside_process_total'].append(outside)
        s['in_process_total'].append(r['t_completed'] - r['t_buy'] - outside)
        s['ours_total'].append((r['t_co_in'] - r['t_buy'])
                               + (r['t_completed'] - r['t_co_out'] - extra_http))
        s['ccxt_total'].append((f0 - r['t_co_in']) + (r['t_co_out'] - f1))
    out = {'label': label, 'enableRateLimit': rate_limit, 'orders_per_bar': burst,
           'orders_measured': len(series['ack']), 'orders_incomplete': missing,
           'extra_rest_calls': sum(max(0, len(r['http']) - 1) for r in rec.records[warmup:]),
           'errors': rec.errors[:5],
           'ms': {k: C.stats(v) for k, v in series.items()}}
    if not series['ack']:
        raise RuntimeError('%s: no order completed: %s' % (label, rec.errors[:3]))
    C.note('%-28s ack p50 %.3f p99 %.3f | completed p50 %.3f p99 %.3f ms (n=%d)', label,
           out['ms']['ack']['p50'], out['ms']['ack']['p99'], out['ms']['completed']['p50'],
           out['ms']['completed']['p99'], out['orders_measured'])
    return out


def ccxt_only(sim, n, rate_limit, gap):
    """The same signed create_order with a bare ccxt client (no backtrader), for
    comparison: what the exchange + ccxt + HTTP cost on their own."""
    BinanceStore.forget_instances()
    store = BinanceStore.get_instance(apikey=DEFAULT_API_KEY, secret=DEFAULT_API_SECRET,
                                      testnet=True, market_type='spot', endpoint=sim.base_url,
                                      rate_limit=rate_limit)
    ex = store.exchange          # the store's configured client, used directly
    ex.load_markets()
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        ex.create_order('BTC/USDT', 'market', 'buy' if i % 2 == 0 else 'sell', SIZE)
        times.append(time.perf_counter() - t0)
        if gap:
            time.sleep(gap)
    store.stop()
    return C.stats(times[n // 10:])


def main(argv=None):
    p = C.add_common_args(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    p.add_argument('--orders', type=int, default=600, help='orders per configuration')
    p.add_argument('--burst', type=int, default=3, help='orders per bar in the burst runs')
    p.add_argument('--gap', type=float, default=0.02,
                   help='seconds between bars (idle) in the paced runs')
    args = p.parse_args(argv)
    orders = 40 if args.quick else args.orders
    warmup = 10 if args.quick else 30
    C.quiet_logs()
    load, waited, quiet = C.wait_for_quiet(args.max_load, 0 if args.quick else args.max_wait)
    result = {'benchmark': 'order_latency', 'quick': args.quick,
              'machine': C.machine(), 'load_at_start': load, 'waited_for_quiet_s': waited,
              'setup': 'run_live(paper_trading=False) vs BinanceSimulator(step mode) in a '
                       'separate process on 127.0.0.1; market orders of 0.01 BTC/USDT',
              'target': {'completed_p99_ms': 3.0}}
    with C.SimProcess(balances={'USDT': 1e9, 'BTC': 1000.0}) as sim:
        configs = [
            # (label, orders per bar, enableRateLimit, idle gap between bars)
            ('default_1_per_bar', 1, True, args.gap),
            ('rate_limit_off_1_per_bar', 1, False, args.gap),
            ('rate_limit_off_back_to_back', 1, False, 0.0),
            ('rate_limit_on_back_to_back', 1, True, 0.0),
            ('default_burst', args.burst, True, args.gap),
            ('rate_limit_off_burst', args.burst, False, args.gap)]
        result['runs'] = {}
        for label, burst, rl, gap in configs:
            result['runs'][label] = run_config(sim, label, orders, burst, rl, warmup, gap)
        result['ccxt_only_ms'] = {
            'paced': ccxt_only(sim, max(50, orders // 2), True, args.gap),
            'back_to_back_rate_limit_off': ccxt_only(sim, max(50, orders // 2), False, 0.0),
            'back_to_back_rate_limit_on': ccxt_only(sim, max(50, orders // 2), True, 0.0)}
    best = result['runs']['rate_limit_off_back_to_back']['ms']
    dflt = result['runs']['default_1_per_bar']['ms']
    result['summary'] = {
        'completed_p99_ms_default': dflt['completed']['p99'],
        'completed_p99_ms_back_to_back': best['completed']['p99'],
        'ack_p99_ms_default': dflt['ack']['p99'],
        'in_process_p99_ms': dflt['in_process_total']['p99'],
        'outside_process_p99_ms': dflt['outside_process_total']['p99'],
        'pass': dflt['completed']['p99'] < 3.0,
    }
    C.emit(result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
