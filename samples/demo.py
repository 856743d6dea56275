#!/usr/bin/env python
"""backtrader_live's demo: an unchanged backtrader strategy trading "live".

A local Binance simulator starts in this process and replays real BTC/USDT
hourly candles fast (by default one hour of market time every 0.1 s). The
SMA crossover from ``sma_cross.py`` runs through ``Cerebro.run_live`` with
``paper_trading=False``: every order goes through ccxt over HTTP to the
simulator, and fills come back over its WebSocket user-data stream, exactly
as they would from Binance. At the end: a summary and a PNG chart.

    python samples/demo.py                 # about 30-40 seconds
    python samples/demo.py --bars 100 --speed 72000 --out /tmp/demo.png
"""
import argparse
import logging
import os
import sys
import time
from collections import Counter

import backtrader_live as bt
from backtrader_live.plotting import save_plot
from backtrader_live.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET, BinanceSimulator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sma_cross import SmaCross  # noqa: E402  (lives next to this file)

SYMBOL, TIMEFRAME, BAR_SECONDS = 'BTC/USDT', '1h', 3600


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--bars', type=int, default=300, help='live bars to trade, then stop')
    p.add_argument('--backfill', type=int, default=100,
                   help='closed bars of history loaded first (indicator warm-up)')
    p.add_argument('--speed', type=float, default=36000.0,
                   help='market seconds per real second (36000: one 1h bar per 0.1 s)')
    p.add_argument('--start', type=int, default=30000,
                   help='index of the first simulated candle in the packaged data '
                        '(30000 is early 2021)')
    p.add_argument('--cash', type=float, default=10000.0, help='starting USDT')
    p.add_argument('--fast', type=int, default=10, help='fast SMA period')
    p.add_argument('--slow', type=int, default=30, help='slow SMA period')
    p.add_argument('--every', type=int, default=10,
                   help='print a progress line every N live bars (1: each bar)')
    p.add_argument('--timeout', type=float, default=None,
                   help='stop after this many seconds whatever happens '
                        '(None: 3x the expected run time + 30 s)')
    p.add_argument('--out', default='demo.png', help='where to save the chart (PNG)')
    p.add_argument('--no-plot', action='store_true', help='skip the chart')
    p.add_argument('--verbose', action='store_true', help="show the library's INFO logs")
    args = p.parse_args(argv)
    if args.bars < 1 or args.speed <= 0 or args.every < 1:
        p.error('--bars, --speed and --every must be positive')
    return args


class Progress(bt.Analyzer):
    """Prints one compact line every ``every`` live bars (an analyzer, so the
    strategy stays untouched)."""

    params = (('every', 10), ('run', None))

    def start(self):
        self.live_bars = 0

    def prenext(self):
        self.next()

    def next(self):
        if not self.p.run.live:
            return
        self.live_bars += 1
        if self.live_bars == 1 or self.live_bars % self.p.every == 0:
            data = self.strategy.data
            print('%s  bar %4d  close %10.2f  position %.5f BTC  equity %10.2f USDT' % (
                data.datetime.datetime(0).strftime('%Y-%m-%d %H:%M'), self.live_bars,
                data.close[0], self.strategy.position.size, self.strategy.broker.getvalue()))


class RunState:
    """What the data callback learned: the feed's status changes."""

    def __init__(self):
        self.live = False
        self.statuses = []

    def on_data(self, data, status, *args, **kwargs):
        name = data._getstatusname(status)
        self.statuses.append(name)
        self.live = name == 'LIVE'
        print('--- data %s: %s' % (data._name, {
            'DELAYED': 'DELAYED, loading history over REST',
            'LIVE': 'LIVE, trading on closed candles from the stream',
            'CONNBROKEN': 'CONNBROKEN, the stream dropped; reconnecting',
            'DISCONNECTED': 'DISCONNECTED'}.get(name, name)))


def run(args):
    """Start the simulator, trade, and return (cerebro, strategy, sim snapshot)."""
    state = RunState()
    timeout = args.timeout or 3 * args.bars * BAR_SECONDS / args.speed + 30
    sim = BinanceSimulator(data=None, speed=args.speed, start_index=args.start,
                           balances={'USDT': args.cash})
    with sim:
        print('simulator on %s: %s %s, %g market seconds per second'
              % (sim.base_url, SYMBOL, TIMEFRAME, args.speed))
        cerebro = bt.Cerebro()
        cerebro.adddatacb(state.on_data)
        cerebro.addanalyzer(Progress, _name='progress', every=args.every, run=state)
        cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name='trades')
        cerebro.addanalyzer(bt.analyzers.DrawDown, _name='drawdown')
        strategies = cerebro.run_live(
            'binance', SYMBOL, TIMEFRAME, SmaCross,
            endpoint=sim.base_url, apikey=DEFAULT_API_KEY, secret=DEFAULT_API_SECRET,
            paper_trading=False, testnet=True,
            backfill_bars=args.backfill, max_bars=args.bars, duration=timeout,
            cash=args.cash, strategy_params=dict(fast=args.fast, slow=args.slow))
        snapshot = dict(orders=sim.orders(), trades=sim.trades(), balances=sim.balances())
    return cerebro, strategies[0], snapshot, state


def summary(strat, snapshot, args, elapsed):
    ta = strat.analyzers.trades.get_analysis()
    dd = strat.analyzers.drawdown.get_analysis()
    # after the history, as --bars counts them: a bar that closed while the
    # stream was starting comes over REST (DELAYED) and still counts
    live_bars = strat.data.live_bars
    closed = ta.get('total', {}).get('closed', 0)
    won = ta.get('won', {}).get('total', 0)
    lost = ta.get('lost', {}).get('total', 0)
    pnl = ta.get('pnl', {}).get('net', {}).get('total', 0.0)
    broker = strat.broker
    start_value, end_value = broker.startingcash, broker.getvalue()
    print('\n=== summary (%.1f s wall time) ===' % elapsed)
    print('bars          %d live after %d backfilled%s' % (
        live_bars, len(strat.data) - live_bars,
        '' if live_bars >= args.bars else
        '  (stopped before --bars: interrupted, --timeout reached, or the feed ended)'))
    print('trades        %d closed: %d won, %d lost; net PnL %.2f USDT' % (closed, won, lost, pnl))
    if ta.get('total', {}).get('open'):
        print('              1 trade still open (position %.5f BTC)' % strat.position.size)
    print('equity        %.2f -> %.2f USDT (%+.2f%%)' % (
        start_value, end_value, 100.0 * (end_value / start_value - 1.0)))
    print('max drawdown  %.2f%% (%.2f USDT)' % (dd.max.drawdown, dd.max.moneydown))
    orders = snapshot['orders']
    statuses = Counter(o.status for o in orders)
    fees = Counter()
    for t in snapshot['trades']:
        fees[t.commission_asset] += float(t.commission)
    print('simulator     %d order(s) %s, %d fill(s), fees %s' % (
        len(orders), dict(statuses), len(snapshot['trades']),
        ', '.join('%.8g %s' % (v, k) for k, v in fees.items()) or 'none'))
    print('balances      %s' % ', '.join('%s %.8g' % (a, float(b['free'] + b['locked']))
                                         for a, b in sorted(snapshot['balances'].items())))
    return live_bars >= args.bars


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    t0 = time.monotonic()
    cerebro, strat, snapshot, state = run(args)
    complete = summary(strat, snapshot, args, time.monotonic() - t0)
    if not args.no_plot:
        try:
            print('chart         %s' % os.path.abspath(save_plot(cerebro, args.out)))
        except ImportError as exc:
            print('chart         skipped: %s' % exc)
    return 0 if complete else 1


if __name__ == '__main__':
    sys.exit(main())
