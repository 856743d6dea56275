#!/usr/bin/env python
"""Memory: RSS over a year of 1m bars (525,600) through the live feed at full speed.

What runs: a real ``Cerebro.run_live('binance', 'BTC/USDT', '1m', ...)`` (paper
broker) against a ``BinanceSimulator`` (another process) serving a synthetic 1m
history (seeded random walk with volatility clustering, see
``_common.synthetic_candles``): markets, the REST backfill and the stream
subscription are the real ones. Then, instead of waiting a year, a producer
thread in this process feeds the year's closed klines *into the store's market
stream callback* (``store._on_market_message``), as the stream thread would after
``json.loads``: each message is the Binance combined-stream JSON text, decoded,
parsed into a Bar, put on the feed's bounded queue (the producer waits while the
queue holds more than 5,000 bars: no bar is dropped), taken by Cerebro and handed
to ``next()``. Bars are generated on the fly (the producer holds nothing).

RSS (VmRSS) is sampled every 5,000 bars. Growth = RSS at the end vs RSS after the
warm-up (the first 50,000 bars, ~35 days); the target is < 1 %.

Configurations: ``defaults`` (run_live and Cerebro at their defaults: stdstats
observers on, ``keep_bars`` = 20,000 bars of every line kept, an SMA crossover
computed but not trading), ``defaults_trading`` (the same strategy trading in the
paper broker), ``exactbars1_indicators`` / ``exactbars1_trading`` (exactbars=1,
stdstats=False: backtrader's own minimum, no plotting), and ``keep_all``
(``keep_bars=None``: every line kept, as before issue 12).

    python benchmarks/bench_memory.py [--quick] [--bars 525600] [--configs a,b]
"""
import argparse
import gc
import json
import math
import os
import queue
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import backtrader as bt  # noqa: E402
import backtrader_live as btl  # noqa: E402
from backtrader_live.stores.binance import BinanceStore  # noqa: E402

SAMPLE_EVERY = 5000
WARMUP_BARS = 50000
TOPIC = 'btcusdt@kline_1m'
KLINE = ('{"stream":"%s","data":{"e":"kline","E":%d,"s":"BTCUSDT","k":{"t":%d,"T":%d,'
         '"s":"BTCUSDT","i":"1m","f":%d,"L":%d,"o":"%.2f","c":"%.2f","h":"%.2f","l":"%.2f",'
         '"v":"%.5f","n":%d,"x":true,"q":"%.4f","V":"%.5f","Q":"%.4f","B":"0"}}}')


class Sampler:
    def __init__(self):
        self.curve = []          # (bars, rss_kb)
        self.count = 0
        self.last_close = None
        self.orders = {}         # status name -> count


class SmaCross(bt.Strategy):
    params = (('fast', 10), ('slow', 30), ('trade', False), ('sampler', None))

    def __init__(self):
        self.crossover = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast),
                                          bt.ind.SMA(period=self.p.slow))

    def notify_order(self, order):
        name = order.getstatusname()
        self.p.sampler.orders[name] = self.p.sampler.orders.get(name, 0) + 1

    def next(self):
        s = self.p.sampler
        s.count += 1
        s.last_close = self.data.close[0]
        if s.count % SAMPLE_EVERY == 0:
            s.curve.append((s.count, C.rss_kb()))
        if not self.p.trade:
            return
        if not self.position and self.crossover > 0:
            self.buy(size=0.01)
        elif self.position and self.crossover < 0:
            self.close()


def walk(seed, price, n):
    """Closed 1m rows generated lazily (same process as synthetic_candles)."""
    rng = random.Random(seed)
    c, sigma, base = price, 0.0008, 0.0008
    for _ in range(n):
        sigma = max(0.2 * base, min(5 * base, 0.97 * sigma + 0.03 * base *
                                    (1 + 3 * abs(rng.gauss(0, 1)))))
        o = c
        c = o * math.exp(rng.gauss(0, sigma))
        h = max(o, c) * math.exp(abs(rng.gauss(0, sigma * 0.6)))
        low = min(o, c) * math.exp(-abs(rng.gauss(0, sigma * 0.6)))
        yield o, h, low, c, rng.lognormvariate(2.0, 0.8)


def produce(store, data, n, done, price):
    """Feed n closed klines after the last delivered bar into the store callback."""
    q = data._q
    t = data._last_ts
    for i, (o, h, low, c, v) in enumerate(walk(11, price, n)):
        while q.qsize() > 5000:
            time.sleep(0.0005)
        t += 60000
        text = KLINE % (TOPIC, t + 60000, t, t + 59999, i, i + 9, o, c, h, low, v, 10,
                        v * c, v / 2, v * c / 2)
        store._on_market_message(None, json.loads(text))
    done.set()


def run(sim, bars, label, exactbars, trade, stdstats=False, keep_bars=20000):
    BinanceStore.forget_instances()
    gc.collect()
    store = BinanceStore.get_instance(apikey=None, secret=None, testnet=True,
                                      market_type='spot', endpoint=sim.base_url)
    sampler = Sampler()
    cerebro = btl.Cerebro(stdstats=stdstats)
    kwargs = {'exactbars': exactbars} if exactbars is not None else {}
    if keep_bars != 20000:
        kwargs['keep_bars'] = keep_bars     # otherwise run_live's default
    live = C.LiveThread(cerebro, 'binance', 'BTC/USDT', '1m', SmaCross, endpoint=sim.base_url,
                        backfill_bars=200, max_bars=bars,
                        strategy_params={'sampler': sampler, 'trade': trade},
                        **kwargs).start()
    sim.wait_subscribed(TOPIC, 1, 20)
    C.eventually(lambda: sampler.count >= 150 or live.error, 30)
    data = cerebro.datas[0]
    # the backfill is delivered when the feed waits on its (empty) stream queue
    C.eventually(lambda: data._state == 'live' and not data._pending and data._q.empty()
                 and sampler.count >= 150, 30)
    time.sleep(0.2)
    rss0 = C.rss_kb()
    done = threading.Event()
    t0 = time.perf_counter()
    producer = threading.Thread(target=produce, args=(store, data, bars, done,
                                                      sampler.last_close), daemon=True)
    producer.start()
    live.join(3600)
    wall = time.perf_counter() - t0
    producer.join(10)
    curve = list(sampler.curve)
    after = [kb for b, kb in curve if b >= WARMUP_BARS]
    at_warm = after[0] if after else None
    end = curve[-1][1] if curve else None
    growth = (100.0 * (end - at_warm) / at_warm) if at_warm else None
    # least-squares slope after warm-up, KB per 100k bars
    pts = [(b, kb) for b, kb in curve if b >= WARMUP_BARS]
    slope = None
    if len(pts) > 2:
        mb = sum(b for b, _ in pts) / len(pts)
        mk = sum(k for _, k in pts) / len(pts)
        den = sum((b - mb) ** 2 for b, _ in pts)
        slope = round(1e5 * sum((b - mb) * (k - mk) for b, k in pts) / den, 1) if den else None
    out = {'label': label, 'exactbars': exactbars, 'stdstats': stdstats, 'trading': trade,
           'keep_bars': keep_bars,
           'bars': sampler.count, 'wall_s': round(wall, 1),
           'bars_per_s': round(bars / wall) if wall else None,
           'rss_mb_before_stream': round(rss0 / 1024, 1),
           'rss_mb_after_warmup': round(at_warm / 1024, 1) if at_warm else None,
           'rss_mb_end': round(end / 1024, 1) if end else None,
           'rss_mb_max': round(max(kb for _, kb in curve) / 1024, 1) if curve else None,
           'growth_after_warmup_pct': round(growth, 3) if growth is not None else None,
           'slope_kb_per_100k_bars': slope,
           'order_notifications': sampler.orders,
           'orders_kept_by_strategy': len(live.result[0]._orders) if live.result else None,
           'curve_bars_rss_mb': [(b, round(kb / 1024, 2)) for b, kb in curve]}
    C.note('%s: %d bars in %.0f s, RSS %.1f -> %.1f MB after warm-up, growth %s %%', label,
           sampler.count, wall, out['rss_mb_after_warmup'] or 0, out['rss_mb_end'] or 0,
           out['growth_after_warmup_pct'])
    return out


CONFIGS = {      # label -> run() keyword arguments
    'defaults': dict(exactbars=None, trade=False, stdstats=True),
    'defaults_trading': dict(exactbars=None, trade=True, stdstats=True),
    'exactbars1_indicators': dict(exactbars=1, trade=False),
    'exactbars1_trading': dict(exactbars=1, trade=True),
    'keep_all': dict(exactbars=None, trade=False, stdstats=True, keep_bars=None),
}


def main(argv=None):
    p = C.add_common_args(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    p.add_argument('--bars', type=int, default=525600)
    p.add_argument('--configs', default=','.join(CONFIGS))
    args = p.parse_args(argv)
    bars = 120000 if args.quick else args.bars
    C.quiet_logs()
    load, waited, _ = C.wait_for_quiet(args.max_load, 0 if args.quick else args.max_wait)
    result = {'benchmark': 'memory', 'quick': args.quick, 'machine': C.machine(),
              'load_at_start': load, 'waited_for_quiet_s': waited,
              'setup': 'run_live 1m paper vs BinanceSimulator (synthetic 1m history); the '
                       'year of closed klines injected into the store\'s stream callback at '
                       'full speed; RSS sampled every %d bars' % SAMPLE_EVERY,
              'warmup_bars': WARMUP_BARS, 'target': {'growth_after_warmup_pct': 1.0},
              'runs': {}}
    with tempfile.TemporaryDirectory() as tmp:
        hist = C.write_candles(C.synthetic_candles(3000, seed=3),
                               os.path.join(tmp, 'binance_BTCUSDT_1m.json'))
        with C.SimProcess(data={'BTC/USDT': hist}, start_index=2500) as sim:
            for label in args.configs.split(','):
                result['runs'][label] = run(sim, bars, label, **CONFIGS[label])
    main_run = result['runs'].get('defaults') or {}
    result['summary'] = {
        'growth_after_warmup_pct': main_run.get('growth_after_warmup_pct'),
        # `or 99` would turn a perfect 0.0 % into a miss
        'pass': main_run.get('growth_after_warmup_pct') is not None
        and main_run['growth_after_warmup_pct'] < 1.0,
        'by_config': {k: v['growth_after_warmup_pct'] for k, v in result['runs'].items()}}
    C.emit(result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
