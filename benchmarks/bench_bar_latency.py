#!/usr/bin/env python
"""Bar latency: the simulator writes a closed kline -> the strategy's ``next()`` sees it.

A ``BinanceSimulator`` in step mode runs in another process on loopback; the
benchmark patches *that process's* ``WebSocketResponse.send_str`` to stamp
``perf_counter()`` right before each closed kline (``"x":true``) is written.
``Cerebro.run_live`` (paper trading, an SMA-crossover strategy) runs here; its
``next()`` stamps ``perf_counter()`` too (CLOCK_MONOTONIC: one clock for both
processes). The store's market-message callback is wrapped (instance attribute)
to split the latency into:

- ``wire``: write in the simulator -> our stream thread has the decoded message
  (kernel loopback, websocket-client's frame read, ``json.loads``);
- ``parse_queue``: parse into a Bar and put it on the feed's queue;
- ``queue_to_next``: the queue -> Cerebro's loop -> indicators -> ``next()``.

Runs back to back (the next bar as soon as ``next()`` saw the last one) and
paced (``--gap`` seconds of idle between bars, closer to real life where bars are
minutes apart and the CPU idles in between).

    python benchmarks/bench_bar_latency.py [--quick] [--bars 2000] [--gap 0.02]
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


class Rec:
    def __init__(self):
        self.seen = {}           # open time ms -> perf_counter in next()
        self.arrived = {}        # open time ms -> (callback in, callback out)
        self.event = threading.Event()
        self.count = 0


class SmaCross(bt.Strategy):
    """The demo's SMA crossover (upstream backtrader), stamping next()."""

    params = (('rec', None), ('fast', 10), ('slow', 30))

    def __init__(self):
        self.crossover = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast),
                                          bt.ind.SMA(period=self.p.slow))

    def prenext(self):
        self.next()

    def next(self):
        t = time.perf_counter()
        rec = self.p.rec
        rec.seen[self.data._last_ts] = t
        rec.count += 1
        rec.event.set()


def instrument(store, rec):
    on_message = store._on_market_message

    def timed(stream, msg):
        t0 = time.perf_counter()
        try:
            return on_message(stream, msg)
        finally:
            k = (msg.get('data') or {}).get('k') or {}
            if k.get('x'):
                rec.arrived[k['t']] = (t0, time.perf_counter())

    store._on_market_message = timed      # bound by subscribe_bars at start


GC = C.GcPauses()


def run(sim, bars, gap, backfill=40):
    BinanceStore.forget_instances()
    store = BinanceStore.get_instance(apikey=None, secret=None, testnet=True,
                                      market_type='spot', endpoint=sim.base_url)
    rec = Rec()
    instrument(store, rec)
    live = C.LiveThread(btl.Cerebro(stdstats=False), 'binance', 'BTC/USDT', '1h', SmaCross,
                        endpoint=sim.base_url, backfill_bars=backfill, max_bars=bars + 1,
                        strategy_params={'rec': rec}).start()
    sim.wait_subscribed('btcusdt@kline_1h', 1, 20)
    C.eventually(lambda: rec.count >= backfill or live.error, 20)
    sim.kline_stamps()
    GC.take()
    for _ in range(bars):
        rec.event.clear()
        n = rec.count
        if gap:
            time.sleep(gap)
        sim.step()
        while rec.count <= n:
            if not rec.event.wait(10):
                raise RuntimeError('a bar did not reach next()')
            rec.event.clear()
    stamps = sim.kline_stamps()
    gc_pauses = GC.summary()
    sim.step()
    live.join(30)
    total, wire, parse, q2n = [], [], [], []
    for _, t_open, t_emit in stamps:
        t_next = rec.seen.get(t_open)
        arr = rec.arrived.get(t_open)
        if t_next is None or arr is None:
            continue
        total.append(t_next - t_emit)
        wire.append(arr[0] - t_emit)
        parse.append(arr[1] - arr[0])
        q2n.append(t_next - arr[1])
    warm = min(20, len(total) // 10)
    return {'bars': len(total), 'gap_between_bars_ms': gap * 1000, 'gc_pauses': gc_pauses,
            'ms': {'emit_to_next': C.stats(total[warm:]), 'wire': C.stats(wire[warm:]),
                   'parse_queue': C.stats(parse[warm:]),
                   'queue_to_next': C.stats(q2n[warm:])}}


def main(argv=None):
    p = C.add_common_args(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    p.add_argument('--bars', type=int, default=2000)
    p.add_argument('--gap', type=float, default=0.02, help='idle seconds between paced bars')
    args = p.parse_args(argv)
    bars = 150 if args.quick else args.bars
    C.quiet_logs()
    load, waited, _ = C.wait_for_quiet(args.max_load, 0 if args.quick else args.max_wait)
    result = {'benchmark': 'bar_latency', 'quick': args.quick, 'machine': C.machine(),
              'load_at_start': load, 'waited_for_quiet_s': waited,
              'setup': 'run_live (paper) SMA crossover vs BinanceSimulator(step mode) in a '
                       'separate process on 127.0.0.1, BTC/USDT 1h; stamps: simulator before '
                       'writing the x:true kline, strategy in next()',
              'target': {'emit_to_next_p99_ms': 1.0}}
    with C.SimProcess() as sim:
        result['back_to_back'] = run(sim, bars, 0.0)
        C.note('back to back: %s', result['back_to_back']['ms']['emit_to_next'])
        result['paced'] = run(sim, bars, args.gap)
        C.note('paced %.0f ms: %s', args.gap * 1000, result['paced']['ms']['emit_to_next'])
    result['summary'] = {
        'p99_ms_back_to_back': result['back_to_back']['ms']['emit_to_next']['p99'],
        'p99_ms_paced': result['paced']['ms']['emit_to_next']['p99'],
        'pass_back_to_back': result['back_to_back']['ms']['emit_to_next']['p99'] < 1.0,
        'pass_paced': result['paced']['ms']['emit_to_next']['p99'] < 1.0}
    C.emit(result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
