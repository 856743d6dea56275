#!/usr/bin/env python
"""Idle CPU: a live run waiting for the next 1h bar, process CPU over 60 s.

``Cerebro.run_live`` (SMA crossover, 1h bars) runs in this process against a
``BinanceSimulator`` in step mode in another process. Once the run is live, the
benchmark only moves the market clock by 2 s every 2 s (``sim.advance(2)``), so
the stream carries what Binance sends while a 1h candle forms: one ``x:false``
kline update every 2 s (plus the server's pings every 20 s). No bar closes in
the window. CPU = ``time.process_time()`` of this whole process (all threads, ns
resolution) over the window, as a percentage of one core; the simulator's
own CPU is reported apart.

Two runs: ``paper`` (market stream only) and ``live`` (paper_trading=False:
market stream + user-data stream + the live broker).

    python benchmarks/bench_idle_cpu.py [--quick] [--seconds 60]
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


class SmaCross(bt.Strategy):
    params = (('fast', 10), ('slow', 30), ('seen', None))

    def __init__(self):
        self.crossover = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast),
                                          bt.ind.SMA(period=self.p.slow))

    def next(self):
        self.p.seen.append(len(self))
        if not self.position and self.crossover > 0:
            self.buy(size=0.01)
        elif self.position and self.crossover < 0:
            self.close()


def thread_cpu():
    """{thread name: cpu seconds} of this process's threads (schedstat, ns)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    for tid in os.listdir('/proc/self/task'):
        try:
            with open('/proc/self/task/%s/schedstat' % tid) as fh:
                ns = int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        name = names.get(int(tid), 'tid-%s' % tid)
        out[name] = out.get(name, 0.0) + ns / 1e9
    return out


def measure(sim, seconds, paper):
    BinanceStore.forget_instances()
    seen = []
    kwargs = dict(endpoint=sim.base_url, backfill_bars=60, max_bars=1,
                  strategy_params={'seen': seen})
    if not paper:
        kwargs.update(apikey=DEFAULT_API_KEY, secret=DEFAULT_API_SECRET, paper_trading=False)
    live = C.LiveThread(btl.Cerebro(stdstats=False), 'binance', 'BTC/USDT', '1h', SmaCross,
                        **kwargs).start()
    sim.wait_subscribed('btcusdt@kline_1h', 1, 20)
    if not paper:
        sim.wait_user_subscribed(20)
    C.eventually(lambda: len(seen) >= 30 or live.error, 20)
    time.sleep(2.0)                       # settle: backfill done, streams live
    threads0, cpu0, sim0 = thread_cpu(), C.proc_cpu_seconds(), sim.cpu_seconds()
    t0 = time.monotonic()
    ticks = 0
    while time.monotonic() - t0 < seconds:
        time.sleep(2.0)
        sim.advance(2)                    # one x:false update, like Binance every 2 s
        ticks += 1
    wall = time.monotonic() - t0
    cpu1, sim1, threads1 = C.proc_cpu_seconds(), sim.cpu_seconds(), thread_cpu()
    bars_in_window = len(seen)
    sim.step()                            # close the bar: max_bars=1 ends the run
    live.join(30)
    per_thread = {k: round(100.0 * (v - threads0.get(k, 0.0)) / wall, 4)
                  for k, v in threads1.items() if v - threads0.get(k, 0.0) > 0}
    return {'window_s': round(wall, 2), 'kline_updates': ticks,
            'process_cpu_pct': round(100.0 * (cpu1 - cpu0) / wall, 4),
            'simulator_cpu_pct': round(100.0 * (sim1 - sim0) / wall, 4),
            'per_thread_cpu_pct': per_thread,
            'note': 'includes the benchmark\'s own main thread (sleeping, one pipe '
                    'command every 2 s)',
            'bars_seen_before_close': bars_in_window}


def main(argv=None):
    p = C.add_common_args(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    p.add_argument('--seconds', type=float, default=60.0)
    args = p.parse_args(argv)
    seconds = 10.0 if args.quick else args.seconds
    C.quiet_logs()
    load, waited, _ = C.wait_for_quiet(args.max_load, 0 if args.quick else args.max_wait)
    result = {'benchmark': 'idle_cpu', 'quick': args.quick, 'machine': C.machine(),
              'load_at_start': load, 'waited_for_quiet_s': waited,
              'target': {'process_cpu_pct': 1.0}}
    with C.SimProcess(balances={'USDT': 1e6}) as sim:
        for mode in ('paper', 'live'):
            C.note('%s: measuring %.0f s of idle', mode, seconds)
            result[mode] = measure(sim, seconds, paper=(mode == 'paper'))
            C.note('%s: %.3f %% CPU', mode, result[mode]['process_cpu_pct'])
    result['summary'] = {'paper_cpu_pct': result['paper']['process_cpu_pct'],
                         'live_cpu_pct': result['live']['process_cpu_pct'],
                         'pass': max(result['paper']['process_cpu_pct'],
                                     result['live']['process_cpu_pct']) < 1.0}
    C.emit(result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
