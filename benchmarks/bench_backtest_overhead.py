#!/usr/bin/env python
"""Backtest overhead: plain ``backtrader.Cerebro`` vs ``backtrader_live.Cerebro``.

The same upstream SMA-crossover strategy (trading, market orders, 0.1 % commission)
over the 34,208 real BTC/USDT 1h candles shipped with the simulator, in one
process, the variants interleaved (A B C A B C ...) so drifts of the machine hit
them alike; ``--reps`` repetitions each, after one untimed warm-up round:

- ``bt``: ``backtrader.Cerebro()`` (the reference);
- ``btl``: ``backtrader_live.Cerebro()`` with the same data, strategy and broker;
- ``btl_risk``: ``backtrader_live.Cerebro()`` plus ``RiskBasedSizer``,
  ``RiskAnalyzer`` and ``MarketStateAnalyzer`` (the strategy then buys without a
  size: the sizer decides);
- with ``--breakdown``: each of the three alone (``btl_sizer``,
  ``btl_riskanalyzer``, ``btl_marketstate``), to see which one costs what, and
  ``btl_2idle``: two analyzers that do nothing (backtrader's own charge for two
  analyzers, part of every kit that has two).

Each run is timed with ``perf_counter`` around ``cerebro.run()`` and the
analyzers' ``get_analysis()`` (the data is an in-memory feed over the
pre-loaded rows, built fresh each run). The verdict is the median of the
per-repetition ratios (``per_rep_median``; median/median, p95 and min ratios
are reported beside it); targets: ``btl/bt <= 1.02`` and
``btl_risk/bt <= 1.10``. ``btl_risk/btl`` (what the risk kit costs by itself) is
reported as well. Default mode: ``runonce`` (vectorised indicators, preload);
``--next-mode`` also times ``runonce=False`` (how a live run computes).

    python benchmarks/bench_backtest_overhead.py [--quick] [--reps 15] [--next-mode] [--breakdown]
"""
import argparse
import datetime
import gc
import logging
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import backtrader as bt  # noqa: E402
import backtrader_live as btl  # noqa: E402
from backtrader_live.sim.candles import DEFAULT_DATA, load_candles  # noqa: E402

ROWS = None
EPOCH = datetime.datetime(1970, 1, 1)


def rows():
    global ROWS
    if ROWS is None:
        ROWS = [(bt.date2num(EPOCH + datetime.timedelta(milliseconds=r[0])),) + tuple(r[1:])
                for r in load_candles(DEFAULT_DATA['BTC/USDT'])]
    return ROWS


class MemoryData(bt.feed.DataBase):
    """Upstream DataBase over pre-loaded rows (no parsing in the timed part)."""

    params = (('rows', None),)

    def start(self):
        super().start()
        self._i = 0

    def _load(self):
        rows_ = self.p.rows
        if self._i >= len(rows_):
            return False
        t, o, h, low, c, v = rows_[self._i]
        self._i += 1
        lines = self.lines
        lines.datetime[0] = t
        lines.open[0] = o
        lines.high[0] = h
        lines.low[0] = low
        lines.close[0] = c
        lines.volume[0] = v
        lines.openinterest[0] = 0.0
        return True


class SmaCross(bt.Strategy):
    """Upstream strategy; ``size=None`` lets the Cerebro's sizer decide."""

    params = (('fast', 10), ('slow', 30), ('size', 0.01))

    def __init__(self):
        self.crossover = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast),
                                          bt.ind.SMA(period=self.p.slow))

    def next(self):
        if not self.position and self.crossover > 0:
            self.buy(size=self.p.size)
        elif self.position and self.crossover < 0:
            self.close()


class IdleAnalyzer(bt.Analyzer):
    """Does nothing: what backtrader charges for any analyzer (its per-bar
    ``_next``/``_notify_cashvalue``/``_notify_fund`` dispatch)."""

    def notify_fund(self, cash, value, fundvalue, shares):
        pass


def build(variant):
    if variant == 'bt':
        cerebro = bt.Cerebro()
    else:
        cerebro = btl.Cerebro()
    cerebro.adddata(MemoryData(rows=rows(), timeframe=bt.TimeFrame.Minutes, compression=60))
    cerebro.broker.setcash(100000.0)
    cerebro.broker.setcommission(commission=0.001)
    parts = {'btl_risk': ('sizer', 'risk', 'market'), 'btl_sizer': ('sizer',),
             'btl_riskanalyzer': ('risk',), 'btl_marketstate': ('market',)}.get(variant, ())
    cerebro.addstrategy(SmaCross, size=None if 'sizer' in parts else 0.01)
    if 'sizer' in parts:
        cerebro.addsizer(btl.sizers.RiskBasedSizer, risk_per_trade=0.01)
    if 'risk' in parts:
        cerebro.addanalyzer(btl.analyzers.RiskAnalyzer, _name='risk')
    if 'market' in parts:
        cerebro.addanalyzer(btl.analyzers.MarketStateAnalyzer, _name='market')
    if variant == 'btl_2idle':
        cerebro.addanalyzer(IdleAnalyzer, _name='idle1')
        cerebro.addanalyzer(IdleAnalyzer, _name='idle2')
    return cerebro


def one_run(variant, **run_kwargs):
    cerebro = build(variant)
    gc.collect()
    t0 = time.perf_counter()
    strat = cerebro.run(**run_kwargs)[0]
    for analyzer in strat.analyzers:    # reading the results is part of a backtest (and
        analyzer.get_analysis()         # where an analyzer's deferred work is paid)
    dt = time.perf_counter() - t0
    return dt, round(cerebro.broker.getvalue(), 6), len(strat)


def compare(reps, variants, **run_kwargs):
    times = {v: [] for v in variants}
    values = {}
    for v in variants:                       # warm-up: imports, caches
        one_run(v, **run_kwargs)
    for i in range(reps):
        for v in (variants if i % 2 == 0 else variants[::-1]):
            dt, value, bars = one_run(v, **run_kwargs)
            times[v].append(dt)
            values[v] = (value, bars)
    s = {v: C.stats(t, scale=1.0) for v, t in times.items()}
    med = {v: statistics.median(t) for v, t in times.items()}

    def ratio(a, b):
        if a not in med or b not in med:
            return None
        return {'median': round(med[a] / med[b], 4),
                'p95': round(s[a]['p95'] / s[b]['p95'], 4),
                'min': round(s[a]['min'] / s[b]['min'], 4),
                'per_rep_median': round(statistics.median(
                    x / y for x, y in zip(times[a], times[b])), 4)}
    return {'seconds': s, 'final_value_and_bars': values,
            'ratios': {'btl/bt': ratio('btl', 'bt'), 'btl_risk/bt': ratio('btl_risk', 'bt'),
                       'btl_risk/btl': ratio('btl_risk', 'btl'),
                       'btl_sizer/btl': ratio('btl_sizer', 'btl'),
                       'btl_riskanalyzer/btl': ratio('btl_riskanalyzer', 'btl'),
                       'btl_marketstate/btl': ratio('btl_marketstate', 'btl'),
                       'btl_2idle/btl': ratio('btl_2idle', 'btl')}}


def main(argv=None):
    p = C.add_common_args(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    p.add_argument('--reps', type=int, default=15)
    p.add_argument('--next-mode', action='store_true', help='also time runonce=False')
    p.add_argument('--breakdown', action='store_true',
                   help='also time each risk component alone (sizer, RiskAnalyzer, '
                        'MarketStateAnalyzer)')
    args = p.parse_args(argv)
    reps = 3 if args.quick else args.reps
    # ERROR: RiskAnalyzer logs every breach (exposure crosses 30 % often here);
    # formatting and writing those lines is not what is being measured.
    C.quiet_logs(logging.ERROR)
    rows()
    load, waited, _ = C.wait_for_quiet(args.max_load, 0 if args.quick else args.max_wait)
    result = {'benchmark': 'backtest_overhead', 'quick': args.quick, 'machine': C.machine(),
              'load_at_start': load, 'waited_for_quiet_s': waited, 'bars': len(rows()),
              'reps': reps, 'target': {'btl/bt': 1.02, 'btl_risk/bt': 1.10}}
    variants = ['bt', 'btl', 'btl_risk']
    if args.breakdown:
        variants += ['btl_sizer', 'btl_riskanalyzer', 'btl_marketstate', 'btl_2idle']
    C.note('runonce (default): %d reps x %d variants', reps, len(variants))
    result['runonce'] = compare(reps, variants)
    if args.next_mode:
        C.note('runonce=False: %d reps x %d variants', reps, len(variants))
        result['next_mode'] = compare(reps, variants, runonce=False)
    # The verdict uses the median of per-repetition ratios: the variants of one
    # repetition run back to back, so a slow spell of the machine (a VM's
    # neighbours) cancels out, where it can swing median/median by 4 %.
    r = {k: v['per_rep_median'] for k, v in result['runonce']['ratios'].items() if v}
    result['summary'] = {'btl/bt': r['btl/bt'], 'btl_risk/bt': r['btl_risk/bt'],
                         'btl_risk/btl': r['btl_risk/btl'],
                         'pass_btl': r['btl/bt'] <= 1.02,
                         'pass_btl_risk': r['btl_risk/bt'] <= 1.10}
    C.note('summary: %s', result['summary'])
    C.emit(result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
