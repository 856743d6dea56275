#!/usr/bin/env python
"""What keeping a trailing stop restartable costs Cerebro's thread (rearm.py).

A live run keeps every emulated order in the journal's ``emulated_orders``
table so that a process killed with kill -9 re-arms it at restart
(backtrader_live/rearm.py). A locally watched trailing stop (StopTrail) is
written again each bar its stop moves. This script measures what those
writes cost the thread that runs the strategy.

Setup: ``Cerebro.run_live(paper_trading=False)`` (the live broker: the paper
broker is upstream's BackBroker and emulates nothing) against a
``BinanceSimulator`` in step mode **in another process** serving synthetic
1m BTC/USDT candles that rise on ~85 % of bars (a seeded walk, lows well
above the trail): the strategy buys 0.01 BTC at the first live bar and
places a ``StopTrail`` sell (``trailpercent=1 %``) at the second; from then
on the stop ratchets on most bars and never triggers. Each bar is closed by
the script (``sim.step()``) and waited for in ``next()``, ``--gap`` seconds
apart (paced: bars are minutes apart live, the writer thread idles in
between).

Three journal modes, interleaved repetitions, one simulator:

- ``none``: no journal (the emulated stop is not kept; warned);
- ``sqlite``: a journal on a SQLite file (WAL, ``synchronous=NORMAL``);
- ``postgresql``: a journal on the server of ``BTL_TEST_POSTGRES_URL``
  (skipped, and said, when unset; a fresh database per run). Note the server
  .ci/postgres.sh starts runs with ``fsync=off``: a commit there is a
  round trip on loopback plus the server's work, no disk flush;
- ``sqlite-sync``, ``postgresql-sync``: the same, every trail move written
  as a durable write (committed and waited for: ``Rearm.trailed`` routed to
  ``Rearm.moved`` on the instance), which is what every move was before
  trail moves were queued: the before/after comparison in one run.

Figures, all in Cerebro's thread (``perf_counter`` around instance methods,
the package is not modified):

- ``broker_next_ms``: the live broker's ``next()`` per bar (it runs the
  emulated orders' check, the trail move and its journal write);
- ``rearm_write_ms``: per trail move, the time in ``Rearm.trailed`` (build
  the row, queue it, and, in the ``-sync`` modes, wait until committed);
- ``emit_to_next_ms``: per bar, the simulator writes the closed kline ->
  the strategy's ``next()`` (the bar latency of bench_bar_latency.py).

Only bars from the stop's third bar on are counted (the buy and the stop's
creation are structural writes, committed on purpose).

    python benchmarks/bench_rearm_trail.py [--quick] [--bars 300] [--reps 3] [--gap 0.02]
"""
import argparse
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import backtrader as bt  # noqa: E402
import backtrader_live as btl  # noqa: E402
from backtrader_live.journal import Journal, attach  # noqa: E402
from backtrader_live.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET  # noqa: E402
from backtrader_live.stores.binance import BinanceStore  # noqa: E402

PG_ENV = 'BTL_TEST_POSTGRES_URL'
SIZE = 0.01


def rising_candles(n, start_ms=1_577_836_800_000, price=30000.0, up=0.85, seed=11):
    """1m rows that rise on ~``up`` of the bars (+0.02..0.08 %), dip a
    little on the others (-0.01..0.05 %); lows within 0.05 % of the body:
    a 1 % trailing stop moves on every rising bar and is never reached."""
    rng = random.Random(seed)
    rows, c = [], price
    for i in range(n):
        o = c
        step = rng.uniform(0.0002, 0.0008) if rng.random() < up else -rng.uniform(0.0001,
                                                                                  0.0005)
        c = o * (1 + step)
        h = max(o, c) * (1 + rng.uniform(0, 0.0003))
        lo = min(o, c) * (1 - rng.uniform(0, 0.0005))
        rows.append([start_ms + i * 60000, round(o, 2), round(h, 2), round(lo, 2), round(c, 2),
                     round(rng.uniform(1, 20), 4)])
    return rows


class Rec:
    def __init__(self, sync=False):
        self.sync = sync
        self.seen = {}              # bar open ms -> perf_counter in next()
        self.count = 0
        self.live = 0
        self.event = threading.Event()
        self.broker_next = []       # (live bar number, seconds)
        self.moves = []             # (live bar number, seconds in Rearm.moved)
        self.stop = None
        self.stop_alive = None      # at the last bar (the run's end cancels it: exit)


class TrailBench(bt.Strategy):
    """Buy at the first live bar, a trailing stop sell at the second."""

    params = (('rec', None),)

    def start(self):
        rec, broker = self.p.rec, self.broker
        broker_next = broker.next
        # a trail move: queued (Rearm.trailed); '-sync' modes: committed and
        # waited for, as every move was before (Rearm.moved, a durable write)
        moved = broker.rearm.moved if rec.sync else broker.rearm.trailed

        def timed_next():
            t0 = time.perf_counter()
            try:
                return broker_next()
            finally:
                rec.broker_next.append((rec.live, time.perf_counter() - t0))

        def timed_moved(order):
            t0 = time.perf_counter()
            try:
                return moved(order)
            finally:
                rec.moves.append((rec.live, time.perf_counter() - t0))

        broker.next = timed_next            # Cerebro calls self._broker.next()
        broker.rearm.trailed = timed_moved  # emulated.py calls broker.rearm.trailed()

    def next(self):
        rec = self.p.rec
        rec.seen[getattr(self.data, '_last_ts', 0)] = time.perf_counter()
        if self.data._laststatus == self.data.LIVE:
            rec.live += 1
            if rec.live == 1:
                self.buy(size=SIZE)
            elif rec.live == 2:
                rec.stop = self.sell(size=round(SIZE * 0.998, 5), exectype=bt.Order.StopTrail,
                                     trailpercent=0.01)
            rec.stop_alive = rec.stop is not None and rec.stop.alive()
        rec.count += 1
        rec.event.set()


def _journal(mode, folder, pg_url):
    mode = mode.split('-')[0]
    if mode == 'none':
        return None, None
    if mode == 'sqlite':
        url = 'sqlite:///%s' % os.path.join(folder, 'j%d.db' % time.time_ns())
        return Journal.open(url), None
    import sqlalchemy
    server = sqlalchemy.create_engine(pg_url, isolation_level='AUTOCOMMIT')
    name = 'btl_bench_%d' % time.time_ns()
    with server.connect() as conn:
        conn.execute(sqlalchemy.text('CREATE DATABASE %s' % name))
    url = sqlalchemy.engine.make_url(pg_url).set(database=name).render_as_string(
        hide_password=False)
    return Journal.open(url), (server, name)


def _drop(pg):
    if pg is None:
        return
    import sqlalchemy
    server, name = pg
    with server.connect() as conn:
        conn.execute(sqlalchemy.text('DROP DATABASE IF EXISTS %s WITH (FORCE)' % name))
    server.dispose()


def one_run(sim, mode, bars, gap, folder, pg_url, backfill=5):
    BinanceStore.forget_instances()
    journal, pg = _journal(mode, folder, pg_url)
    cerebro = btl.Cerebro(stdstats=False)
    if journal is not None:
        journal.start_run('binance', ['BTC/USDT'], '1m', False, name='bench-rearm')
        attach(cerebro, journal, exchange='binance')
    rec = Rec(sync=mode.endswith('-sync'))
    run = C.LiveThread(cerebro, 'binance', 'BTC/USDT', '1m', TrailBench,
                       endpoint=sim.base_url, apikey=DEFAULT_API_KEY, secret=DEFAULT_API_SECRET,
                       paper_trading=False, backfill_bars=backfill, max_bars=bars + 1,
                       strategy_params={'rec': rec}).start()
    try:
        sim.wait_subscribed('btcusdt@kline_1m', 1, 30)
        sim.wait_user_subscribed(30)
        C.eventually(lambda: rec.count >= backfill or run.error, 30)
        sim.kline_stamps()
        try:
            C.step_each_bar(sim, rec, bars, gap, lambda: run.error)
        except RuntimeError as exc:
            raise RuntimeError('%s: %s' % (mode, exc)) from None
        stamps = sim.kline_stamps()
        sim.step()
        run.join(60)
    finally:
        if journal is not None:
            journal.close()
        _drop(pg)
    return summarize(mode, rec, stamps, journal)


def summarize(mode, rec, stamps, journal):
    first = 5       # from the stop's third bar on: steady trailing
    nexts = [dt for bar, dt in rec.broker_next if bar >= first]
    moves = [dt for bar, dt in rec.moves if bar >= first]
    moved_bars = {bar for bar, _ in rec.moves if bar >= first}
    with_move = [dt for bar, dt in rec.broker_next if bar in moved_bars]
    e2n = []
    for _, t_open, t_emit in stamps:
        t_next = rec.seen.get(t_open)
        if t_next is not None:
            e2n.append(t_next - t_emit)
    out = {'mode': mode, 'live_bars': rec.live, 'bars_counted': len(nexts),
           'trail_moves': len(moves), 'bars_with_a_move': len(with_move),
           'stop_alive_at_last_bar': rec.stop_alive,
           'stop_price_at_end': rec.stop.created.price if rec.stop is not None else None,
           'ms': {'broker_next': C.stats(nexts), 'broker_next_bars_with_a_move':
                  C.stats(with_move), 'rearm_write_per_move': C.stats(moves),
                  'emit_to_next': C.stats(e2n[first + 2:])}}
    if journal is not None:
        out['journal_failures'] = journal.writer.failures
    return out


def _median_of(reps, mode, figure, key):
    import statistics
    vals = [r[mode]['ms'][figure][key] for r in reps if r[mode]['ms'][figure].get('n')]
    return round(statistics.median(vals), 4) if vals else None


def main(argv=None):
    p = C.add_common_args(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    p.add_argument('--bars', type=int, default=300)
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--gap', type=float, default=0.02, help='idle seconds between bars')
    p.add_argument('--modes', default='none,sqlite-sync,sqlite,postgresql-sync,postgresql')
    args = p.parse_args(argv)
    C.quiet_logs()
    logging_off()
    bars = 60 if args.quick else args.bars
    reps = 1 if args.quick else args.reps
    pg_url = os.environ.get(PG_ENV)
    modes = [m for m in args.modes.split(',') if not m.startswith('postgresql') or pg_url]
    if 'postgresql' in args.modes and not pg_url:
        C.note('%s is not set: the PostgreSQL mode is skipped', PG_ENV)
    load, waited, _ = C.wait_for_quiet(args.max_load, 0 if args.quick else args.max_wait)
    result = {'benchmark': 'rearm_trail', 'quick': args.quick, 'machine': C.machine(),
              'load_at_start': load, 'waited_for_quiet_s': round(waited),
              'setup': 'run_live(paper_trading=False), BTC/USDT 1m synthetic rising candles, '
                       'BinanceSimulator (step mode) in another process; a StopTrail sell '
                       '(trailpercent 1%%) that moves on most bars; journal modes %s '
                       '(-sync: each move committed and waited for, as before), '
                       'interleaved x%d, %d bars each, %.0f ms between bars'
                       % (modes, reps, bars, args.gap * 1000),
              'postgresql': 'skipped (%s unset)' % PG_ENV if not pg_url else
                            'the server of %s (.ci/postgres.sh: fsync=off)' % PG_ENV,
              'reps': []}
    steps = reps * len(modes) * (bars + 3) + 400
    with tempfile.TemporaryDirectory() as folder:
        path = C.write_candles(rising_candles(steps + 300),
                               os.path.join(folder, 'binance_BTCUSDT_1m.json'))
        with C.SimProcess(data={'BTC/USDT': path}, start_index=200) as sim:
            one_run(sim, 'sqlite', 20, args.gap, folder, pg_url)       # warm-up
            for i in range(reps):
                rep = {}
                for mode in modes:
                    rep[mode] = one_run(sim, mode, bars, args.gap, folder, pg_url)
                    C.note('rep %d %s: broker.next %s | per move %s', i, mode,
                           rep[mode]['ms']['broker_next'],
                           rep[mode]['ms']['rearm_write_per_move'])
                result['reps'].append(rep)
    summary = {}
    for mode in modes:
        summary[mode] = {fig: {k: _median_of(result['reps'], mode, fig, k)
                               for k in ('p50', 'p99', 'max')}
                         for fig in ('broker_next', 'rearm_write_per_move', 'emit_to_next')}
        summary[mode]['trail_moves_per_bar'] = round(
            sum(r[mode]['trail_moves'] for r in result['reps'])
            / float(sum(r[mode]['bars_counted'] for r in result['reps']) or 1), 3)
    for mode in modes:
        if mode == 'none' or 'none' not in summary:
            continue
        summary[mode]['added_broker_next_p50_ms'] = round(
            summary[mode]['broker_next']['p50'] - summary['none']['broker_next']['p50'], 4)
    summary['definitions'] = 'median over repetitions of each repetition\'s percentile, ms'
    result['summary'] = summary
    C.emit(result)
    return 0


def logging_off():
    """The no-journal warning and the per-order info lines, not per bar."""
    import logging
    logging.getLogger('backtrader_live').setLevel(logging.ERROR)


if __name__ == '__main__':
    sys.exit(main())
