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

``--symbols 20``: the multi-feed mode instead. One run_live with 20 symbols
(synthetic 1m candles, one feed each, one socket) against the floor measured in
the same run and simulator: the same run_live with the first symbol only,
``--reps`` times, interleaved. Every step closes one bar of every symbol at the
same instant; the 20 bars of one minute come in one ``next()``
(feedgroup.py: backtrader's time order), so two latencies are reported:

- ``per_release``: the *last* of the minute's klines written (the moment the
  minute is complete) -> that ``next()``;
- ``per_bar``: every bar, its own kline written -> that ``next()``: an early
  bar of the minute also waits for the others to be written and read (the
  simulator writes 60 messages one after the other on one socket).

Splits (p50/p99 each): ``last_emit_to_last_queued`` (the stream thread),
``last_queued_to_next`` (Cerebro's thread), and the latter again as
``last_queued_to_woken`` (the thread back from the feed group's wait, a
wrapper on ``FeedGroup.wait_for``) + ``woken_to_next`` (backtrader's round).

The verdict (``summary``) is the median over repetitions of the per-repetition
p99 ratio to the 1-symbol floor, for each definition.
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
from backtrader_live.feedgroup import FeedGroup  # noqa: E402
from backtrader_live.feeds.rows import CandleRowsFeed  # noqa: E402
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
        rec.seen[getattr(self.data, '_last_ts', 0)] = t     # a backtest feed has none
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


def step_bars(sim, rec, bars, gap):
    """Close ``bars`` bars one at a time (``gap`` idle seconds before each),
    each waited for in next(): the simulator's kline stamps and GC pauses."""
    sim.kline_stamps()
    GC.take()
    C.step_each_bar(sim, rec, bars, gap)
    return sim.kline_stamps(), GC.summary()


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
    stamps, gc_pauses = step_bars(sim, rec, bars, gap)
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


def symbol_files(tmp, k, rows=3000):
    data = {}
    for i in range(k):
        base = 'S%02d' % i
        path = C.write_candles(C.synthetic_candles(rows, price=50.0 + 37.0 * i, seed=100 + i),
                               os.path.join(tmp, 'binance_%sUSDT_1m.json' % base))
        data[base + '/USDT'] = path
    return data


def run_symbols(sim, symbols, bars, gap, backfill=40):
    """run_live over ``symbols`` (1m): per step, last kline written -> next()."""
    BinanceStore.forget_instances()
    store = BinanceStore.get_instance(apikey=None, secret=None, testnet=True,
                                      market_type='spot', endpoint=sim.base_url)
    rec = Rec()
    arrived = {}       # open time -> [(callback in, callback out)] of the closed klines
    on_message = store._on_market_message

    def timed(stream, msg):
        t0 = time.perf_counter()
        try:
            return on_message(stream, msg)
        finally:
            k = (msg.get('data') or {}).get('k') or {}
            if k.get('x'):
                arrived.setdefault(k['t'], []).append((t0, time.perf_counter()))

    store._on_market_message = timed      # bound by subscribe_bars at start
    woke = []       # perf_counter when Cerebro's thread came back from the group's wait
    wait_for = FeedGroup.wait_for

    def timed_wait(group, blockers, seconds):
        try:
            return wait_for(group, blockers, seconds)
        finally:
            woke.append(time.perf_counter())

    FeedGroup.wait_for = timed_wait     # class attribute: restored below
    try:
        stamps, gc_pauses, rec = _run_symbols_live(sim, symbols, bars, gap, backfill, rec)
    finally:
        FeedGroup.wait_for = wait_for
    return _symbols_result(symbols, bars, gap, backfill, rec, stamps, gc_pauses, arrived, woke)


def _run_symbols_live(sim, symbols, bars, gap, backfill, rec):
    live = C.LiveThread(btl.Cerebro(stdstats=False), 'binance', list(symbols), '1m', SmaCross,
                        endpoint=sim.base_url, backfill_bars=backfill, max_bars=bars + 1,
                        strategy_params={'rec': rec}).start()
    for sym in symbols:
        sim.wait_subscribed(sym.replace('/', '').lower() + '@kline_1m', 1, 30)
    C.eventually(lambda: rec.count >= backfill or live.error, 30)
    if live.error:
        raise live.error
    stamps, gc_pauses = step_bars(sim, rec, bars, gap)
    sim.step()
    live.join(60)
    return stamps, gc_pauses, rec


def _symbols_result(symbols, bars, gap, backfill, rec, stamps, gc_pauses, arrived, woke):
    import bisect
    woke.sort()
    emitted = {}
    for _, t_open, t_emit in stamps:
        emitted.setdefault(t_open, []).append(t_emit)
    last, first, wire, loop, per_bar, wake, round_ = [], [], [], [], [], [], []
    for t_open, times in sorted(emitted.items()):
        t_next = rec.seen.get(t_open)
        got = arrived.get(t_open, ())
        if t_next is None or len(times) != len(symbols) or len(got) != len(symbols):
            continue
        last.append(t_next - max(times))
        first.append(t_next - min(times))
        wire.append(max(t for _, t in got) - max(times))    # last written -> last queued
        loop.append(t_next - max(t for _, t in got))        # last queued -> next()
        # ... of which: Cerebro's thread back from the group's wait (the last
        # one before next(), after the last bar was queued) and the rest
        i = bisect.bisect_left(woke, t_next) - 1
        if i >= 0 and woke[i] >= max(t for _, t in got):
            wake.append(woke[i] - max(t for _, t in got))
            round_.append(t_next - woke[i])
        per_bar.append([t_next - t for t in times])         # each bar: its kline -> next()
    warm = min(20, len(last) // 10)
    return {'symbols': len(symbols), 'steps': len(last), 'gap_between_bars_ms': gap * 1000,
            'next_calls_per_step': round((rec.count - backfill) / float(bars), 3),
            'gc_pauses': gc_pauses,
            'ms': {'per_release': C.stats(last[warm:]),
                   'per_bar': C.stats([x for step in per_bar[warm:] for x in step]),
                   'from_first_emit': C.stats(first[warm:]),
                   'last_emit_to_last_queued': C.stats(wire[warm:]),
                   'last_queued_to_next': C.stats(loop[warm:]),
                   # split of last_queued_to_next, over the steps where the
                   # thread waited on the group (wake_steps of steps)
                   'last_queued_to_woken': C.stats(wake[warm:]),
                   'woken_to_next': C.stats(round_[warm:])},
            'wake_steps': len(wake)}


def backtest_round_ms(k, bars=1000):
    """backtrader's own cost of one round of its loop with ``k`` datas (a
    backtest bar by bar, like a live run: no preload, no runonce): the part
    of a live bar's latency that upstream spends whatever feeds it."""
    rows = C.synthetic_candles(bars)
    cerebro = bt.Cerebro(stdstats=False)
    for _ in range(k):
        cerebro.adddata(CandleRowsFeed(rows=rows, timeframe=bt.TimeFrame.Minutes, compression=1))
    cerebro.addstrategy(SmaCross, rec=Rec())
    t0 = time.perf_counter()
    cerebro.run(runonce=False, preload=False, exactbars=1)
    return round((time.perf_counter() - t0) * 1000.0 / bars, 4)


def main_symbols(args):
    """The multi-feed mode: N symbols against the 1-symbol floor, same run."""
    import tempfile
    bars = 100 if args.quick else min(args.bars, 500)
    load, waited, _ = C.wait_for_quiet(args.max_load, 0 if args.quick else args.max_wait)
    result = {'benchmark': 'bar_latency_symbols', 'quick': args.quick, 'machine': C.machine(),
              'load_at_start': load, 'waited_for_quiet_s': waited,
              'setup': 'run_live (paper) SMA crossover on 1 and on %d symbols (1m synthetic '
                       'candles) vs one BinanceSimulator (step mode) in a separate process; '
                       'latency per release and per bar (see summary.definitions)'
                       % args.symbols,
              'target': 'p99 with %d symbols <= 2 x p99 with 1 symbol' % args.symbols}
    many_key = '%d_symbols' % args.symbols
    with tempfile.TemporaryDirectory() as tmp:
        # one simulator serves every run: enough minutes for all of them
        # (it stops when its candles end)
        data = symbol_files(tmp, args.symbols, rows=400 + 4 * args.reps * (bars + 2))
        symbols = list(data)
        with C.SimProcess(data=data, start_index=200) as sim:
            for label, gap in (('paced', args.gap), ('back_to_back', 0.0)):
                reps = [(run_symbols(sim, symbols[:1], bars, gap),
                         run_symbols(sim, symbols, bars, gap)) for _ in range(args.reps)]
                result[label] = {'reps': [{'floor_1_symbol': one, many_key: many}
                                          for one, many in reps]}
                for one, many in reps:
                    C.note('%s: 1 symbol %s | %d symbols per release %s, per bar %s', label,
                           one['ms']['per_release'], args.symbols, many['ms']['per_release'],
                           many['ms']['per_bar'])
    result['backtest_round_ms'] = {'1_datas': backtest_round_ms(1),
                                   '%d_datas' % args.symbols: backtest_round_ms(args.symbols)}
    summary = {'backtest_round_ms': result['backtest_round_ms'],
               'definitions': DEFINITIONS, 'reps': args.reps}
    for label in ('paced', 'back_to_back'):
        summary[label] = {how: symbols_verdict(result[label]['reps'], many_key, how)
                          for how in ('per_release', 'per_bar')}
    result['summary'] = summary
    C.emit(result)
    return 0


DEFINITIONS = {
    'per_release': 'one figure per minute: the last of its N klines written by the simulator '
                   '-> the next() that sees all N (the moment the minute is complete)',
    'per_bar': 'one figure per bar (N per minute): its own kline written -> the next() that '
               'sees it; an early bar waits for the rest of its minute (backtrader\'s time '
               'order: one next() per instant), so this includes the others arriving',
    'floor': 'the same run_live with the first symbol only, same simulator, same repetition: '
             'per bar = per release',
    'verdict': 'median over repetitions of the per-repetition p50/p99 ratio N symbols / 1'}


def symbols_verdict(reps, many_key, how):
    """Median over repetitions of N symbols vs 1 (``how``: per_release or per_bar)."""
    import statistics
    rows = []
    for rep in reps:
        one = rep['floor_1_symbol']['ms']['per_release']
        many = rep[many_key]['ms'][how]
        rows.append((one['p50'], one['p99'], many['p50'], many['p99']))
    med = [round(statistics.median(col), 4) for col in zip(*rows)]
    r99 = round(statistics.median(m / o for _, o, _, m in rows), 2)
    r50 = round(statistics.median(m / o for o, _, m, _ in rows), 2)
    return {'p50_ms_1_symbol': med[0], 'p99_ms_1_symbol': med[1],
            'p50_ms_%s' % many_key: med[2], 'p99_ms_%s' % many_key: med[3],
            'ratio_p50': r50, 'ratio_p99': r99, 'ratios_p99': [round(m / o, 2) for _, o, _, m in rows],
            'pass_within_2x': r99 <= 2.0}


def main(argv=None):
    p = C.add_common_args(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    p.add_argument('--bars', type=int, default=2000)
    p.add_argument('--gap', type=float, default=0.02, help='idle seconds between paced bars')
    p.add_argument('--symbols', type=int, default=1,
                   help='> 1: the multi-feed mode (N symbols in one run vs 1, same run)')
    p.add_argument('--reps', type=int, default=3,
                   help='multi-feed mode: repetitions of (1 symbol, N symbols), the verdict '
                        'is the median ratio')
    args = p.parse_args(argv)
    if args.symbols > 1:
        C.quiet_logs()
        return main_symbols(args)
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
