#!/usr/bin/env python
"""What the trade journal costs Cerebro's thread: per bar and per order.

The journal's hooks (``JournalAnalyzer``: an equity row each bar, snapshots
when a position or the cash changes, order/fill rows per notification) only
build a dict and put it in a queue; a named thread writes to the database.
The upstream SMA crossover over the 34,208 real BTC/USDT 1h candles (next
mode, ``runonce=False``: how a live run computes), without the journal and
with it (a SQLite file in a temp dir), interleaved repetitions, median of
per-repetition differences, two ways:

- ``hot_path``: the writer thread writes after the run (its interval set
  beyond the run), so the difference is only what Cerebro's thread pays
  (the hooks and the queue). In a live run bars are seconds to hours apart
  and the writer has written a bar's rows long before the next bar: this is
  the journal's share of bar latency.
- ``concurrent``: the writer writes during the run. A backtest runs bars
  back to back, so the writer's work (SQLAlchemy, sqlite3) competes with
  Cerebro's thread for the GIL: this is what a *backtest* with a journal
  pays, the writer's whole cost.

Besides, ``hooks``: the journal's own hooks timed where they run
(``perf_counter`` around ``JournalAnalyzer.next`` and ``notify_order``, the
writer thread writing concurrently): microseconds per bar and per order
notification, percentiles; what GC and the dispatch of one more analyzer
add is in the whole-run differences above.

The added time per bar is then compared with the live bar latency measured
by bench_bar_latency.py (``--bar-latency-ms``, default 0.34 ms: the back to
back p50 of docs/benchmarks.md): the journal's share of a bar's latency.

    python benchmarks/bench_journal_overhead.py [--quick] [--reps 7]
"""
import argparse
import gc
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import backtrader as bt  # noqa: E402
import backtrader_live as btl  # noqa: E402
from bench_backtest_overhead import MemoryData, SmaCross, rows  # noqa: E402
from backtrader_live.journal import Journal, JournalAnalyzer, attach  # noqa: E402


class TimedJournalAnalyzer(JournalAnalyzer):
    """The journal's analyzer with its two hot hooks timed."""

    spent = {'next': [], 'notify_order': []}

    def next(self):
        t0 = time.perf_counter()
        super().next()
        self.spent['next'].append(time.perf_counter() - t0)

    def notify_order(self, order):
        t0 = time.perf_counter()
        super().notify_order(order)
        self.spent['notify_order'].append(time.perf_counter() - t0)


def timed_hooks(folder, n):
    """Per-call time of the journal's hooks on Cerebro's thread (us)."""
    cerebro = btl.Cerebro()
    cerebro.adddata(MemoryData(rows=rows()[:n], timeframe=bt.TimeFrame.Minutes,
                               compression=60))
    cerebro.broker.setcash(100000.0)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.addstrategy(SmaCross, size=0.01)
    journal = Journal.open('sqlite:///%s' % os.path.join(folder, 'timed.db'))
    journal.start_run('backtest')
    for values in TimedJournalAnalyzer.spent.values():
        values.clear()
    cerebro.addanalyzer(TimedJournalAnalyzer, journal=journal, exchange='bench')
    cerebro.run(runonce=False)
    journal.close(timeout=300)
    return {hook: C.stats(values, scale=1e6, digits=2)
            for hook, values in TimedJournalAnalyzer.spent.items()}


def one_run(mode, folder, n):
    cerebro = btl.Cerebro()
    cerebro.adddata(MemoryData(rows=rows()[:n], timeframe=bt.TimeFrame.Minutes,
                               compression=60))
    cerebro.broker.setcash(100000.0)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.addstrategy(SmaCross, size=0.01)
    journal = None
    if mode:
        journal = Journal.open('sqlite:///%s' % os.path.join(folder, 'j%d.db' % time.time_ns()),
                               queue_size=len(rows()) * 4)
        if mode == 'hot_path':
            journal.writer.interval = 3600.0     # write after the run (flush wakes it)
        journal.start_run('backtest')
        attach(cerebro, journal, exchange='bench')
    gc.collect()
    t0 = time.perf_counter()
    strat = cerebro.run(runonce=False)[0]
    dt = time.perf_counter() - t0
    orders = len(getattr(cerebro.broker, 'orders', ())) or None
    if journal is not None:
        journal.close(timeout=300)
        assert journal.writer.pending == 0
    return dt, len(strat), orders


def main(argv=None):
    p = C.add_common_args(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    p.add_argument('--reps', type=int, default=7)
    p.add_argument('--bar-latency-ms', type=float, default=0.34)
    args = p.parse_args(argv)
    C.quiet_logs()
    load, waited, _ = C.wait_for_quiet(args.max_load, args.max_wait)
    n = 3000 if args.quick else len(rows())
    reps = 2 if args.quick else args.reps
    times = {None: [], 'hot_path': [], 'concurrent': []}
    with tempfile.TemporaryDirectory() as folder:
        one_run('hot_path', folder, n)            # warm-up (imports, first connection)
        for _ in range(reps):
            for mode in times:
                dt, bars, orders = one_run(mode, folder, n)
                times[mode].append(dt)
        hooks = timed_hooks(folder, n)
    result = {'benchmark': 'journal_overhead', 'hooks_us': hooks, 'machine': C.machine(), 'load_at_start': load,
              'waited_s': round(waited), 'bars': bars, 'orders': orders, 'reps': reps,
              'run_s_without': round(statistics.median(times[None]), 4),
              'bar_latency_ms_reference': args.bar_latency_ms}
    for mode in ('hot_path', 'concurrent'):
        diff = statistics.median(b - a for a, b in zip(times[None], times[mode]))
        per_bar_us = diff / bars * 1e6
        result[mode] = {'run_s': round(statistics.median(times[mode]), 4),
                        'added_us_per_bar': round(per_bar_us, 2),
                        'ratio': round(statistics.median(
                            b / a for a, b in zip(times[None], times[mode])), 4),
                        'share_of_bar_latency': round(
                            per_bar_us / (args.bar_latency_ms * 1000), 4)}
    result['hooks_share_of_bar_latency_p50'] = round(
        hooks['next']['p50'] / (args.bar_latency_ms * 1000), 4)
    C.emit(result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
