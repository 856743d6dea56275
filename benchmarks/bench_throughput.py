#!/usr/bin/env python
"""Throughput: closed bars per second the live feeds ingest, many symbols at once.

A ``BinanceSimulator`` in another process serves ``--symbols`` markets (synthetic
1m candles per symbol, ``data={...}`` with several markets); one ``Cerebro``
here runs one ``BinanceData`` feed per symbol on one store (one WebSocket with
all the kline subscriptions, like a real multi-symbol run) and a paper broker.
The simulator process steps its clock at a fixed rate (each step closes one
1m bar of *every* symbol: 3 kline messages per symbol, as Binance sends an
``x:false`` update, the ``x:true`` close and the new bar's first update) and
stamps each closed kline right before writing it; the strategy stamps each
data's new bar in ``next()``.

For each offered rate the result gives bars/s offered and delivered and the
emit -> next() latency (p50/p95/p99). The sustainable rate is the highest rate
whose p99 stays under max(1 ms, 2 x the p99 at the lowest rate) with >= 99 %
of the bars delivered; beyond it queues build up and latency grows.

    python benchmarks/bench_throughput.py [--quick] [--symbols 1,20] [--seconds 5]
"""
import argparse
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import backtrader as bt  # noqa: E402
import backtrader_live as btl  # noqa: E402
from backtrader_live.stores.binance import BinanceStore  # noqa: E402


class Stamp(bt.Strategy):
    params = (('seen', None),)

    def __init__(self):
        self._last = [None] * len(self.datas)   # by index: datas overload ==

    def prenext(self):
        self.next()

    def next(self):
        t = time.perf_counter()
        seen, last = self.p.seen, self._last
        for i, d in enumerate(self.datas):
            ts = d._last_ts
            if ts != last[i]:
                last[i] = ts
                seen[(d.p.dataname, ts)] = t


def symbol_files(tmp, k, rows=3000):
    data = {}
    for i in range(k):
        base = 'S%02d' % i
        path = C.write_candles(C.synthetic_candles(rows, price=50.0 + 37.0 * i, seed=100 + i),
                               os.path.join(tmp, 'binance_%sUSDT_1m.json' % base))
        data[base + '/USDT'] = path
    return data


def n_steps(rate, seconds, k):
    return max(20, int(rate * seconds)) if rate else int(400 * seconds / k) + 20


def run_rate(sim, symbols, rate, seconds, backfill=20):
    BinanceStore.forget_instances()
    store = BinanceStore.get_instance(apikey=None, secret=None, testnet=True,
                                      market_type='spot', endpoint=sim.base_url)
    steps = n_steps(rate, seconds, len(symbols))
    cerebro = btl.Cerebro(stdstats=False)
    for sym in symbols:
        cerebro.adddata(store.DataCls.from_timeframe_string(
            '1m', store, sym, name=sym, backfill_bars=backfill, max_live_bars=steps))
    broker = store.getbroker(paper_trading=True, cash=10000.0)
    cerebro.setbroker(broker)
    seen = {}
    cerebro.addstrategy(Stamp, seen=seen)
    err = []

    def target():
        try:
            cerebro.run(quicknotify=True, exactbars=1)
        except BaseException as exc:
            err.append(exc)
    th = threading.Thread(target=target, name='bench-cerebro', daemon=True)
    th.start()
    C.eventually(lambda: len(seen) or err, 60)
    if err:
        raise err[0]
    for sym in symbols:
        sim.wait_subscribed(sym.replace('/', '').lower() + '@kline_1m', 1, 30)
    C.eventually(lambda: len(seen) >= backfill * len(symbols) or err, 60)
    sim.kline_stamps()
    cpu0 = C.proc_cpu_seconds()
    wall = sim.steps(steps, rate)
    C.eventually(lambda: not th.is_alive() or err, 60)
    cpu = C.proc_cpu_seconds() - cpu0
    th.join(5)
    store.stop()          # run_live does this; a bare cerebro.run() does not
    stamps = sim.kline_stamps()
    ids = {s.replace('/', ''): s for s in symbols}
    lat = []
    for sid, t_open, t_emit in stamps:
        t = seen.get((ids.get(sid), t_open))
        if t is not None:
            lat.append(t - t_emit)
    offered = len(stamps) / wall if wall else None
    warm = min(len(lat) // 10, 5 * len(symbols))
    out = {'steps_per_s_offered': rate or 'max', 'steps': steps,
           'bars_emitted': len(stamps), 'bars_delivered': len(lat),
           'emit_wall_s': round(wall, 3),
           'bars_per_s_offered': round(offered, 1) if offered else None,
           'client_cpu_pct': round(100.0 * cpu / wall, 1) if wall else None,
           'latency_ms': C.stats(lat[warm:]), 'error': repr(err[0]) if err else None}
    C.note('rate %s steps/s x %d symbols: %s bars/s, p50 %s p99 %s ms, delivered %d/%d',
           rate or 'max', len(symbols), out['bars_per_s_offered'],
           out['latency_ms'].get('p50'), out['latency_ms'].get('p99'), len(lat), len(stamps))
    return out


def sweep(symbol_counts_rates, seconds, result):
    with tempfile.TemporaryDirectory() as tmp:
        for k, rates in symbol_counts_rates:
            future = sum(n_steps(r or None, seconds, k) for r in rates) + 100
            data = symbol_files(tmp, k, rows=2000 + future)
            symbols = list(data)
            runs = []
            with C.SimProcess(data=data, start_index=2000) as sim:
                for rate in rates:
                    runs.append(run_rate(sim, symbols, rate or None, seconds))
            base = runs[0]['latency_ms'].get('p99') or 0
            limit = max(1.0, 2 * base)
            ok = [r for r in runs if r['latency_ms'].get('p99') is not None
                  and r['latency_ms']['p99'] <= limit
                  and r['bars_delivered'] >= 0.99 * r['bars_emitted']]
            best = max(ok, key=lambda r: r['bars_per_s_offered'] or 0) if ok else None
            result['by_symbols'][str(k)] = {
                'runs': runs,
                'latency_limit_p99_ms': round(limit, 3),
                'sustained_bars_per_s': best and best['bars_per_s_offered'],
                'p99_ms_at_sustained': best and best['latency_ms']['p99'],
                'max_offered_bars_per_s': max((r['bars_per_s_offered'] or 0) for r in runs)}


def main(argv=None):
    p = C.add_common_args(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    p.add_argument('--symbols', default='1,20', help='symbol counts to test')
    p.add_argument('--seconds', type=float, default=5.0, help='duration of each rate')
    p.add_argument('--rates', default=None,
                   help='steps per second to offer (0: as fast as the simulator goes); '
                        'default: 50,200,500,1000,0 for 1 symbol, 5,10,25,50,100,200,0 '
                        'for more')
    args = p.parse_args(argv)
    seconds = 2.0 if args.quick else args.seconds
    plan = []
    for k in (int(x) for x in args.symbols.split(',')):
        if args.rates:
            rates = [float(r) for r in args.rates.split(',')]
        elif args.quick:
            rates = [100, 0] if k == 1 else [10, 0]
        else:
            rates = [50, 200, 500, 1000, 0] if k == 1 else [5, 10, 25, 50, 100, 200, 0]
        plan.append((k, rates))
    C.quiet_logs()
    load, waited, _ = C.wait_for_quiet(args.max_load, 0 if args.quick else args.max_wait)
    result = {'benchmark': 'throughput', 'quick': args.quick, 'machine': C.machine(),
              'load_at_start': load, 'waited_for_quiet_s': waited,
              'setup': 'BinanceSimulator with N synthetic 1m markets in another process, '
                       'stepped at a fixed rate (every step closes a bar of every symbol); '
                       'one Cerebro with N BinanceData feeds on one store/WebSocket, paper '
                       'broker, exactbars=1', 'by_symbols': {}}
    sweep(plan, seconds, result)
    result['summary'] = {k: {'sustained_bars_per_s': v['sustained_bars_per_s'],
                             'p99_ms_at_sustained': v['p99_ms_at_sustained'],
                             'max_offered_bars_per_s': v['max_offered_bars_per_s']}
                         for k, v in result['by_symbols'].items()}
    C.emit(result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
