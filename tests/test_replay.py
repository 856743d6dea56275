"""cerebro.replaydata on a live feed (issue 14): backtrader's replay, live.

In a backtest, ``replaydata`` over 1m data with a 5m target shows the
strategy one 5m bar that grows with every 1m bar (``len(data)`` unchanged,
open fixed, high/low/close/volume growing) and a new one when the 5 minutes
roll. Live, each closed 1m kline must update the forming bar exactly so:
the strategy's sequence of (len, open, high, low, close, volume) per
``next()`` is compared with upstream's replaydata over the same candles.
"""
import datetime
import threading

import backtrader as bt
import pytest

import backtrader_live as btl
from backtrader_live.feeds.rows import CandleRowsFeed
from backtrader_live.linewindow import LineWindow
from backtrader_live.sim import candles as cd
from helpers import KEY, SECRET, eventually, load_rows
from livekit import Recorder, Recording
from venues import ALL, STORES, VENUES, sim_position, venue_sim

M = 60 * 1000
EPOCH = datetime.datetime(1970, 1, 1)
# the 1m kline stream of each venue's BTC market
MINUTE_TOPIC = {'binance-spot': 'btcusdt@kline_1m', 'binance-usdm': 'btcusdt@kline_1m',
                'binance-coinm': 'btcusd_perp@kline_1m', 'bybit-spot': 'kline.1.BTCUSDT',
                'bybit-linear': 'kline.1.BTCUSDT', 'bybit-inverse': 'kline.1.BTCUSD'}


def ms(dt):
    return int((dt - EPOCH).total_seconds() * 1000)


def seen(data):
    return (len(data), data.open[0], data.high[0], data.low[0], data.close[0],
            data.volume[0])


class Replayed(Recording):
    """Records (len, open, high, low, close, volume) of data0 and its
    datetime at every next(); buys ``size`` on the first live update and
    closes the position ``hold`` updates later."""

    params = (('size', None), ('hold', 3))

    def __init__(self):
        super().__init__()
        self.stamps = []
        self.sma = bt.ind.SMA(self.data, period=3)
        self._bought_at = None

    def next(self):
        rec = self.p.rec
        self.stamps.append(self.data.datetime.datetime(0))
        sma = self.sma[0]
        rec.positions.append(None if sma != sma else sma)     # NaN before its period
        if self.p.size and rec.data_status[-1:] == ['LIVE']:
            if self._bought_at is None:
                self._bought_at = len(rec.bars)
                self.buy(size=self.p.size)
            elif len(rec.bars) == self._bought_at + self.p.hold:
                self.close()
        rec.bars.append(seen(self.data))

    prenext = next      # every update, before the SMA's period too


def backtest(rows, compression, window=None):
    """Upstream's replaydata over ``rows`` stamped at their close
    (backtrader's convention): what the strategy sees per next()."""
    cerebro = btl.Cerebro() if window else bt.Cerebro()
    cerebro.p.stdstats = False
    cerebro.replaydata(CandleRowsFeed(rows=rows, shift=M, timeframe=bt.TimeFrame.Minutes,
                                      compression=1),
                       timeframe=bt.TimeFrame.Minutes, compression=compression)
    rec = Recorder()
    rec.data_status.append('')
    cerebro.addstrategy(Replayed, rec=rec)
    if window:
        cerebro.keep_recent_bars(window)
    strategy = cerebro.run()[0]
    return rec, strategy.stamps


def minute_rows(hours=30, start=600):
    """The real 1h candles sliced into 1m candles along the simulator's path."""
    rows = []
    for row in load_rows()[start:start + hours]:
        row = tuple(row)
        for i in range(60):
            a = row[0] + i * M
            rows.append(list(cd.slice_bar(row, row[0] + 60 * M, a, a + M)))
    return rows


# -- what the live replay leans on in upstream's Replayer (backtrader 1.9.78.123) ---------
@pytest.mark.parametrize('compression', [5, 15, 60, 240])
def test_upstream_replayer_boundoff_groups_open_stamped_bars_as_close_stamped(compression):
    """Live feeds stamp a bar with its open time; backtrader stamps it with its
    close. Upstream's Replayer with ``boundoff`` = one base bar (in minutes)
    over open-stamped 1m bars shows exactly what it shows without it over the
    same bars stamped at their close, one minute later, across midnight too."""
    rows = minute_rows()[7:]
    results = []
    for shift, extra in ((M, {}), (0, {'boundoff': 1})):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.replaydata(CandleRowsFeed(rows=rows, shift=shift,
                                          timeframe=bt.TimeFrame.Minutes, compression=1),
                           timeframe=bt.TimeFrame.Minutes, compression=compression, **extra)
        rec = Recorder()
        rec.data_status.append('')
        cerebro.addstrategy(Replayed, rec=rec)
        results.append((rec, cerebro.run()[0].stamps))
    (close_rec, close_dt), (open_rec, open_dt) = results
    assert open_rec.bars == close_rec.bars and len(open_rec.bars) == len(rows)
    assert [d + datetime.timedelta(minutes=1) for d in open_dt] == close_dt
    buckets = {r[0] // (compression * M) for r in rows}
    assert close_rec.bars[-1][0] == len(buckets)        # bars grew per bucket, not per row
    assert close_dt[0].date() != close_dt[-1].date()


class CheckingRowsFeed(CandleRowsFeed):
    """Asks its filters to check the wall clock before every bar, as
    Cerebro's live loop does (``data._check()``) in every round without one."""

    def _load(self):
        self._check()
        return super()._load()


def test_upstream_replayer_wall_clock_checks_change_nothing():
    """Live, upstream's loop calls ``data._check()`` in rounds without a bar:
    the Replayer then compares the wall clock (far past these 2017 candles)
    with its bar. With adjbartime=False (its default; replaydata on a live
    feed refuses other options) that changes no bar: the sequence is the
    same as without checks."""
    rows = minute_rows(hours=26)[3:]
    results = []
    for cls in (CandleRowsFeed, CheckingRowsFeed):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.replaydata(cls(rows=rows, shift=0, timeframe=bt.TimeFrame.Minutes,
                               compression=1),
                           timeframe=bt.TimeFrame.Minutes, compression=15, boundoff=1)
        rec = Recorder()
        rec.data_status.append('')
        cerebro.addstrategy(Replayed, rec=rec)
        results.append((rec.bars, cerebro.run()[0].stamps))
    assert results[0] == results[1] and len(results[0][0]) == len(rows)


def test_replay_keeps_its_bars_in_a_line_window():
    """run_live trims every line to keep_bars: a replayed data (its bar
    rewritten in place, backtrader's replay) reads the same values as with
    every bar kept, an indicator on it too."""
    rows = minute_rows(hours=12)
    full, _ = backtest(rows, 5)
    trimmed, _ = backtest(rows, 5, window=LineWindow(100, every=10))
    assert len(full.bars) == len(rows) and full.bars[-1][0] > 100
    assert trimmed.bars == full.bars
    assert trimmed.positions == full.positions


# -- live, on every venue --------------------------------------------------------------------
def history_count(now_ms, backfill, bucket):
    """The replayed history: the last ``backfill`` closed 1m bars, extended
    back to the start of the replayed bar the first one falls in."""
    last = now_ms // M * M - M
    first = (last - (backfill - 1) * M) // bucket * bucket
    return (last - first) // M + 1


def run_replay(sim, venue, steps, compression=5, backfill=7, size=None, paper=False):
    """store.getdata(1m) + cerebro.replaydata(...) + cerebro.run() in a thread;
    ``steps`` closed 1m klines after the history. Returns (rec, stamps, rows):
    the 1m candles the exchange served over that span."""
    exchange, market_type, symbol = VENUES[venue][:3]
    store = STORES[exchange](endpoint=sim.base_url, apikey=KEY, secret=SECRET,
                             market_type=market_type)
    cerebro = btl.Cerebro()
    minute = store.getdata(dataname=symbol, tf='1m', backfill_bars=backfill)
    replayed = cerebro.replaydata(minute, timeframe=bt.TimeFrame.Minutes,
                                  compression=compression)
    assert replayed is minute and minute.replaying
    cerebro.setbroker(store.getbroker(paper_trading=paper))
    rec = Recorder()
    cerebro.addstrategy(Replayed, rec=rec, size=size)
    result = []
    worker = threading.Thread(target=lambda: result.append(cerebro.run()),
                              name='test-replay-run', daemon=True)
    try:
        history = history_count(sim.now_ms(), backfill, compression * M)
        worker.start()
        sim.wait_subscribed(MINUTE_TOPIC[venue], timeout=10)
        if not paper:
            sim.wait_user_subscribed(timeout=10, **(
                {'market': VENUES[venue][4]} if VENUES[venue][4] != 'spot' else {}))
        eventually(lambda: len(rec.bars) >= history, 10)
        assert len(rec.bars) == history
        broker = cerebro.broker
        for _ in range(steps):
            count = len(rec.bars)
            sim.advance(60)
            eventually(lambda: len(rec.bars) > count, 10)
            eventually(lambda: getattr(broker, 'settled', lambda: True)(), 10)
        minute.request_stop()
        worker.join(20)
        assert not worker.is_alive() and result, 'the run did not end'
        stamps = result[0][0].stamps
        rows = minute.fetch_range(ms(stamps[0]), ms(stamps[-1]) + M)
    finally:
        minute.request_stop()
        worker.join(20)
        store.stop()
    rows = [[b.open_time, b.open, b.high, b.low, b.close, b.volume] for b in rows]
    return rec, stamps, rows


@pytest.mark.parametrize('venue', ALL)
def test_replay_1m_to_5m_live_as_upstream_replays_and_orders_work(venue):
    """Closed 1m klines, history then live, each update the forming 5m bar as
    upstream's replaydata over the same candles does; a buy and a sell placed
    from the replayed strategy fill on the exchange."""
    unit = VENUES[venue][5]
    with venue_sim(venue) as sim:
        rec, stamps, rows = run_replay(sim, venue, steps=12, size=unit)
        on_exchange = sim_position(sim, venue)
    reference, ref_stamps = backtest(rows, 5)
    assert rec.bars == reference.bars
    assert rec.positions == reference.positions          # SMA(3) on the replayed bars
    # stamped at the open of the latest 1m bar: backtrader's stamps minus one minute
    assert [s + datetime.timedelta(minutes=1) for s in stamps] == ref_stamps
    assert ms(stamps[0]) % (5 * M) == 0 and rec.bars[0][0] == 1     # a whole first bar
    lens = [b[0] for b in rec.bars]
    assert lens[-1] >= 3 and any(a == b for a, b in zip(lens, lens[1:]))   # updated in place
    assert 'LIVE' in rec.data_status and rec.data_status[0] == 'DELAYED'
    assert rec.statuses().count('Completed') == 2, rec.orders
    assert rec.strategy.position.size == pytest.approx(0.0, abs=unit * 0.01)
    assert on_exchange == pytest.approx(0.0, abs=unit * 0.01)


# -- bad input: refused by name before anything starts -----------------------------------------
def test_bad_replay_targets_are_refused_by_name():
    from backtrader_live.stores import BinanceStore
    store = BinanceStore(endpoint='http://127.0.0.1:9')
    cerebro = btl.Cerebro()
    minute = store.getdata(dataname='BTC/USDT', tf='1m')
    five = store.getdata(dataname='BTC/USDT', tf='5m')
    three = store.getdata(dataname='BTC/USDT', tf='3m')

    def refused(data, match, **kwargs):
        with pytest.raises(btl.ConfigError, match=match):
            cerebro.replaydata(data, **kwargs)

    minutes = bt.TimeFrame.Minutes
    refused(five, r"replaydata: 3m is shorter than the feed's 5m; valid targets for a 5m "
                  r"feed: 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h$",
            timeframe=minutes, compression=3)
    refused(three, r"replaydata: 5m is not a multiple of the feed's 3m; valid targets for a "
                   r"3m feed: 3m, 15m, 30m, 1h", timeframe=minutes, compression=5)
    refused(minute, r"replaydata\(timeframe=Minutes, compression=7\) on a live feed: not an "
                    r"intraday timeframe binance serves; valid targets for a 1m feed: 1m, 3m, "
                    r"5m, .*12h \(TimeFrame.Minutes with compression 60 is 1h\)",
            timeframe=minutes, compression=7)
    refused(minute, r"compression=1\) on a live feed: .*a day or longer is not replayed "
                    r"live.*resampledata", timeframe=bt.TimeFrame.Days, compression=1)
    refused(minute, r"replaydata on a live feed takes timeframe= and compression= only.*not "
                    r"adjbartime, rightedge", timeframe=minutes, compression=5,
            rightedge=False, adjbartime=True)
    assert cerebro.datas == [] and not minute.replaying       # nothing added, nothing changed
    store.stop()


def test_a_second_replay_of_a_feed_in_the_run_is_a_feed_of_its_own():
    """As upstream clones a data already in the run, a live feed already
    added gets a new live feed of the same stream, replayed, named after its
    symbol and target; the first is left as it was."""
    from backtrader_live.stores import BinanceStore
    store = BinanceStore(endpoint='http://127.0.0.1:9')
    cerebro = btl.Cerebro()
    minute = store.getdata(dataname='BTC/USDT', tf='1m', backfill_bars=30, max_live_bars=9)
    cerebro.adddata(minute)
    hour = cerebro.replaydata(minute, timeframe=bt.TimeFrame.Minutes, compression=60)
    assert hour is not minute and hour.replaying and not minute.replaying
    assert (hour.p.tf, hour.p.dataname, hour._store) == ('1m', 'BTC/USDT', store)
    assert (hour.p.backfill_bars, hour.p.max_live_bars) == (30, 9)
    assert hour._name == 'BTC/USDT 1h replayed' and cerebro.datas == [minute, hour]
    named = cerebro.replaydata(minute, name='hourly', timeframe=bt.TimeFrame.Minutes,
                               compression=60)
    assert named._name == 'hourly'
    store.stop()


@pytest.mark.parametrize('market_type, field', [('spot', 'volume'), ('linear', 'volume'),
                                                ('inverse', 'turnover')])
def test_bybit_stream_bars_carry_the_volume_rest_bars_carry(market_type, field):
    """A bar's volume is in the base coin whatever its source: ccxt's
    fetch_ohlcv (history, gap fills) takes Bybit's ``turnover`` on inverse
    markets (``volume`` counts USD contracts there), so the stream's bars
    must too, or a replayed or resampled bar mixes the two units (the
    1m -> 5m replay on bybit-inverse summed coins and contracts)."""
    from backtrader_live.stores import BybitStore
    store = BybitStore(market_type=market_type, endpoint='http://127.0.0.1:9')
    msg = {'topic': 'kline.1.BTCUSD', 'data': [
        {'start': 60000, 'open': '100', 'high': '110', 'low': '90', 'close': '105',
         'volume': '2100', 'turnover': '20', 'confirm': True}]}
    (_, bar), = store.parse_market_message(msg)
    assert bar.volume == {'volume': 2100.0, 'turnover': 20.0}[field]
    store.stop()


# -- beside other feeds ---------------------------------------------------------------------
class Both(Recording):
    """Records what every data shows at each next() (every data has a bar)."""

    def next(self):
        self.p.rec.bars.append(tuple(seen(d) for d in self.datas))
        self.p.rec.positions.append(tuple(d.datetime.datetime(0) for d in self.datas))


def rows_from(rows, first_ms):
    return [r for r in rows if r[0] >= first_ms]


@pytest.mark.parametrize('venue', ['binance-usdm', 'bybit-spot'])
def test_a_1m_feed_and_its_15m_replay_as_in_a_backtest(venue):
    """adddata(1m) + replaydata(the same feed, 15m): a replayed feed of its
    own, its history from a 15m start; each 1m bar and the 15m bar it
    updates come in one next(), as upstream shows a 1m data and a 15m
    replay over the same candles."""
    exchange, market_type, symbol = VENUES[venue][:3]
    with venue_sim(venue) as sim:
        store = STORES[exchange](endpoint=sim.base_url, market_type=market_type)
        cerebro = btl.Cerebro()
        minute = store.getdata(dataname=symbol, tf='1m', backfill_bars=20)
        cerebro.adddata(minute)
        quarter = cerebro.replaydata(minute, timeframe=bt.TimeFrame.Minutes, compression=15)
        assert cerebro.datas == [minute, quarter] and quarter._name == '%s 15m replayed' % symbol
        cerebro.setbroker(store.getbroker(paper_trading=True))
        rec = Recorder()
        cerebro.addstrategy(Both, rec=rec)
        worker = threading.Thread(target=cerebro.run, name='test-replay-two', daemon=True)
        try:
            worker.start()
            sim.wait_subscribed(MINUTE_TOPIC[venue], timeout=10)
            eventually(lambda: len(rec.bars) >= 20, 10)
            for _ in range(20):
                count = len(rec.bars)
                sim.advance(60)
                eventually(lambda: len(rec.bars) > count, 10)
            for data in cerebro.datas:
                data.request_stop()
            worker.join(20)
            assert not worker.is_alive()
            first, start = rec.positions[0]
            start = ms(start) // (15 * M) * (15 * M)
            rows = minute.fetch_range(start, ms(rec.positions[-1][0]) + M)
        finally:
            for data in cerebro.datas:
                data.request_stop()
            worker.join(20)
            store.stop()
    rows = [[b.open_time, b.open, b.high, b.low, b.close, b.volume] for b in rows]
    reference = bt.Cerebro(stdstats=False)
    for rows_of, replay in ((rows_from(rows, ms(first)), False), (rows, True)):
        feed = CandleRowsFeed(rows=rows_of, shift=M, timeframe=bt.TimeFrame.Minutes,
                              compression=1)
        if replay:
            reference.replaydata(feed, timeframe=bt.TimeFrame.Minutes, compression=15)
        else:
            reference.adddata(feed)
    expected = Recorder()
    reference.addstrategy(Both, rec=expected)
    reference.run()
    assert len(rec.bars) == 40 and rec.bars == expected.bars
    one_minute = datetime.timedelta(minutes=1)
    assert [(a + one_minute, b + one_minute) for a, b in rec.positions] == expected.positions
    assert all(a == b for a, b in rec.positions)      # one time in each next()
    assert rec.bars[0][1][0] == 1 and rec.bars[-1][1][0] >= 3     # the replay's len grew
    assert sum(b[1][0] == a[1][0] for a, b in zip(rec.bars, rec.bars[1:])) >= 30


def test_a_replayed_feed_longer_than_the_run_shortest_is_refused():
    """Upstream's loop takes a replayed data's time as the round's: a 1h
    replay stamped at its open would run ahead of the 1m bars beside it."""
    from backtrader_live.stores import BinanceStore
    store = BinanceStore(endpoint='http://127.0.0.1:9')
    cerebro = btl.Cerebro()
    cerebro.adddata(store.getdata(dataname='BTC/USDT', tf='1m'))
    cerebro.replaydata(store.getdata(dataname='BTC/USDT', tf='1h'), name='four',
                       timeframe=bt.TimeFrame.Minutes, compression=240)
    cerebro.addstrategy(bt.Strategy)
    with pytest.raises(btl.ConfigError, match=r"replaydata: the replayed feed four \(1h bars\) "
                                              r"is longer than the run's 1m feed .*replay a "
                                              r"feed of the shortest timeframe"):
        cerebro.run()
    store.stop()


# -- run_live(..., replay='5m') ---------------------------------------------------------------
@pytest.mark.parametrize('venue', ['binance-coinm', 'bybit-linear'])
def test_run_live_replay_keyword(venue):
    """run_live(symbol, '1m', replay='5m'): data0 is the 1m feed replayed to
    5m, named after its symbol, as the object API's replay over the same
    candles; max_bars counts the 1m updates."""
    from livekit import LiveRun
    exchange, market_type, symbol = VENUES[venue][:3]
    with venue_sim(venue) as sim:
        history = history_count(sim.now_ms(), 7, 5 * M)
        run = LiveRun(sim, exchange=exchange, symbol=symbol, market_type=market_type,
                      strategy=Replayed, strategy_params=None, timeframe='1m',
                      topic=MINUTE_TOPIC[venue], replay='5m', backfill_bars=7, max_bars=6,
                      paper_trading=True)
        run.backfill = history
        run.start(wait_subscribed=False)
        sim.wait_subscribed(MINUTE_TOPIC[venue], timeout=10)
        eventually(lambda: len(run.rec.bars) >= history, 10)
        for _ in range(6):
            count = len(run.rec.bars)
            sim.advance(60)
            eventually(lambda: len(run.rec.bars) > count or run.error, 10)
        run.join()
        strategy = run.rec.strategy
        data = strategy.data
        stamps = strategy.stamps
        rows = data.fetch_range(ms(stamps[0]), ms(stamps[-1]) + M)
    assert data.replaying and data._name == VENUES[venue][2] and len(strategy.datas) == 1
    assert len(run.rec.bars) == history + 6
    rows = [[b.open_time, b.open, b.high, b.low, b.close, b.volume] for b in rows]
    reference, ref_stamps = backtest(rows, 5)
    assert run.rec.bars == reference.bars
    assert [s + datetime.timedelta(minutes=1) for s in stamps] == ref_stamps


def test_run_live_bad_replay_values_are_refused_before_anything_starts():
    def refused(match, timeframe='1m', **kwargs):
        with pytest.raises(btl.ConfigError, match=match):
            btl.Cerebro().run_live('binance', 'BTC/USDT', timeframe, btl.Strategy,
                                   endpoint='http://127.0.0.1:9', **kwargs)
    refused(r"replay must be one timeframe name .* got '2d'; valid: 1m, 3m", replay='2d')
    refused(r"replay must be one timeframe name .* got \['1h'\]", replay=['1h'])
    refused(r"replay='3m' on 5m feeds: valid targets for a 5m feed: 5m, 15m, 30m, 1h, 2h, "
            r"4h, 6h, 8h, 12h \(a day or longer", timeframe='5m', replay='3m')
    refused(r"replay='1d' on 1m feeds: valid targets for a 1m feed: 1m, 3m", replay='1d')
    refused(r"replay='1h' replays the first timeframe, 4h, and it must be the shortest "
            r"\(here 1m\): put it first, timeframe=\['1m', ...\]", timeframe=['4h', '1m'],
            replay='1h')


def test_a_replayed_run_is_journaled_per_update(tmp_path):
    """The journal's equity row per next() (each update of the replayed bar,
    at its time), the buy and the close with their fills, the feed's status."""
    from livekit import LiveRun
    from sqlalchemy import select
    from backtrader_live.journal import Journal, attach, tables
    venue = 'binance-spot'
    journal = Journal.open('sqlite:///%s' % (tmp_path / 'journal.db'))
    journal.start_run(venue, ['BTC'], '1m', False)
    cerebro = btl.Cerebro()
    attach(cerebro, journal, exchange=venue)
    with venue_sim(venue) as sim:
        history = history_count(sim.now_ms(), 7, 5 * M)
        run = LiveRun(sim, cerebro=cerebro, strategy=Replayed, strategy_params=None,
                      timeframe='1m', topic=MINUTE_TOPIC[venue], replay='5m', backfill_bars=7,
                      max_bars=6, size=VENUES[venue][5])
        run.backfill = history
        run.start()
        for _ in range(6):
            count = len(run.rec.bars)
            sim.advance(60)
            eventually(lambda: len(run.rec.bars) > count or run.error, 10)
            eventually(run._settled, 10)
        run.join()
    journal.close()

    def rows(table):
        tab = tables.metadata.tables[table]
        with journal.engine.connect() as conn:
            return [r._asdict() for r in conn.execute(select(tab).order_by(tab.c.id))]
    stamps = run.rec.strategy.stamps
    equity = rows('equity')
    assert len(equity) == len(stamps) == history + 6
    assert [e['at'] for e in equity] == stamps
    assert run.rec.statuses().count('Completed') == 2, run.rec.orders
    fills = rows('fills')
    assert fills and round(sum(f['size'] for f in fills), 9) == pytest.approx(0.0, abs=1e-3)
    assert {'DELAYED', 'LIVE'} <= {s['status'] for s in rows('stream_events')
                                   if s['source'] == 'data'}


def test_a_history_only_feed_replays_as_upstream_too():
    """live=False (the history, then done): our bars carry their open time
    all the same, so replaydata takes the same path; run in this thread."""
    venue = 'bybit-linear'
    exchange, market_type, symbol = VENUES[venue][:3]
    with venue_sim(venue) as sim:
        store = STORES[exchange](endpoint=sim.base_url, market_type=market_type)
        cerebro = btl.Cerebro()
        minute = store.getdata(dataname=symbol, tf='1m', backfill_bars=50, live=False)
        cerebro.replaydata(minute, timeframe=bt.TimeFrame.Minutes, compression=15)
        rec = Recorder()
        rec.data_status.append('')
        cerebro.addstrategy(Replayed, rec=rec)
        stamps = cerebro.run()[0].stamps
        rows = minute.fetch_range(ms(stamps[0]), ms(stamps[-1]) + M)
        store.stop()
    rows = [[b.open_time, b.open, b.high, b.low, b.close, b.volume] for b in rows]
    reference, ref_stamps = backtest(rows, 15)
    assert len(rec.bars) >= 50 and ms(stamps[0]) % (15 * M) == 0
    assert rec.bars == reference.bars
    assert [s + datetime.timedelta(minutes=1) for s in stamps] == ref_stamps


def test_a_replay_beside_the_exchange_hour():
    """A 1m stream replayed to 15m (data0) with the exchange's 1h klines
    (resampledata, data1): the 15m replay as upstream's over the 1m candles,
    the 1h data at every next() the newest hour closed by the 1m bar's close
    (the time-ordered release of feedgroup.py), the hour rolling over once."""
    from backtrader_live.stores import BinanceStore
    with venue_sim('binance-spot') as sim:
        store = BinanceStore(endpoint=sim.base_url)
        cerebro = btl.Cerebro()
        minute = store.getdata(dataname='BTC/USDT', tf='1m', backfill_bars=30)
        cerebro.replaydata(minute, timeframe=bt.TimeFrame.Minutes, compression=15)
        hour = cerebro.resampledata(minute, timeframe=bt.TimeFrame.Minutes, compression=60)
        assert (hour.p.tf, hour.replaying, cerebro.datas) == ('1h', False, [minute, hour])
        cerebro.setbroker(store.getbroker(paper_trading=True))
        rec = Recorder()
        cerebro.addstrategy(Both, rec=rec)
        worker = threading.Thread(target=cerebro.run, name='test-replay-hour', daemon=True)
        try:
            # the replay's first bar: its 30 bars of history, from a 15m start
            last = sim.now_ms() // M * M - M
            start = (last - 29 * M) // (15 * M) * (15 * M)
            worker.start()
            for topic in ('btcusdt@kline_1m', 'btcusdt@kline_1h'):
                sim.wait_subscribed(topic, timeout=10)
            # its history fetched before the step below moves the clock
            eventually(lambda: minute._state != 'backfill', 10)
            # the 1h history bar closed before the 1m history began: next()
            # starts with the hour closing at the next step, on its last minute
            sim.step()
            eventually(lambda: rec.bars, 10)
            sim.step()      # one more hour: sixty 1m updates
            eventually(lambda: len(rec.bars) >= 61, 10)
            minute.request_stop()
            hour.request_stop()
            worker.join(20)
            assert not worker.is_alive()
            stamps = [p[0] for p in rec.positions]
            rows = minute.fetch_range(start, ms(stamps[-1]) + M)
        finally:
            minute.request_stop()
            hour.request_stop()
            worker.join(20)
            store.stop()
    for (one, hourly) in rec.positions:
        assert ms(hourly) == (ms(one) + M) // (60 * M) * (60 * M) - 60 * M
    assert len({p[1] for p in rec.positions}) == 2          # the hour rolled over
    rows = [[b.open_time, b.open, b.high, b.low, b.close, b.volume] for b in rows]
    reference, ref_stamps = backtest(rows, 15)
    # next() starts with the first hour (prenext before it), well inside the
    # replay: compare the updates from there on
    skipped = len(reference.bars) - len(rec.bars)
    assert skipped > 0 and [b[0] for b in rec.bars] == reference.bars[skipped:]
    assert [s + datetime.timedelta(minutes=1) for s in stamps] == ref_stamps[skipped:]
