"""How a live run ends and starts, on every venue: every ending goes through
the broker's final sync (runstop() too), a second Ctrl-C still applies
``cancel_on_exit``, and a bad argument or a refused setting at start is a
clear configuration error, not the strategy's."""
import logging
import os
import signal
import threading
import time

import pytest

import backtrader_live as btl
from helpers import KEY, SECRET, eventually
from livekit import LiveRun, Scripted
from venues import DERIVATIVES, SIMS, VENUES, sim_orders
from venues import live_run as venue_run

# The one venue table (tests/venues.py): exchange, market_type, symbol, kline
# topic, user market, order size, sim kwargs.
FUTURES = DERIVATIVES


def venue_sim(venue, **kwargs):
    """The venue's step-mode simulator, started (the test stops it)."""
    exchange, extra = VENUES[venue][0], VENUES[venue][6]
    return SIMS[exchange](speed=None, start_index=600, **dict(extra, **kwargs)).start()


def held(sim, venue):
    """What the exchange holds of the venue's instrument (spot coin, or contracts:
    one symbol is traded per test)."""
    market = VENUES[venue][4]
    if market == 'spot':
        btc = sim.balances().get('BTC', {})
        return float(btc.get('free', 0)) + float(btc.get('locked', 0))
    return sum(float(p.size) for p in sim.positions(market=market))


class FinalState(Scripted):
    """Scripted, plus what stop() sees: the run's final position and the
    statuses its orders ended in."""

    def stop(self):
        rec = self.p.rec
        rec.final_position = self.position.size
        rec.final_open = len(self.broker.get_orders_open())


# -- 6: runstop() goes through the final sync ---------------------------------------------
def _buy_below(s):
    # 0.997 x bar 6's close is crossed by bar 7's range (real data).
    s.buy(size=s.p.rec.size, price=round(s.data.close[0] * 0.997, 1), exectype=btl.Order.Limit)


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_runstop_reconciles_before_the_strategy_stops(venue, caplog):
    caplog.set_level(logging.INFO, logger='backtrader_live')
    sim = venue_sim(venue)
    try:
        run = venue_run(sim, venue, strategy=FinalState, max_bars=5,
                        script={6: _buy_below, 7: lambda s: s.env.runstop()})
        run.rec.size = VENUES[venue][5]
        run.start()
        run.step(1)
        assert run.rec.statuses() == ['Submitted', 'Accepted']
        # The fill's stream messages are held back: only a REST sync can see it.
        assert sim.faults.stall_ws('private', seconds=None) == 1
        run.step(1)
        run.join()
        (order,) = sim_orders(sim, venue)
        assert order.status.upper() == 'FILLED'
        assert run.rec.statuses()[-1] == 'Completed'
        assert run.rec.final_open == 0
        assert run.rec.final_position == pytest.approx(held(sim, venue), rel=1e-9)
        assert run.rec.final_position > 0
        assert 'leaving 1 open order' not in caplog.text
    finally:
        sim.faults.clear()
        sim.stop()


class Boom(RuntimeError):
    pass


def _raise(s):
    raise Boom('a bug in next()')


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_an_exception_still_syncs_before_the_exit_policy(venue, caplog):
    caplog.set_level(logging.INFO, logger='backtrader_live')
    sim = venue_sim(venue)
    try:
        run = venue_run(sim, venue, strategy=FinalState, max_bars=5,
                        script={6: _buy_below, 7: _raise})
        run.rec.size = VENUES[venue][5]
        run.start().step(1)
        assert sim.faults.stall_ws('private', seconds=None) == 1
        sim.step()
        with pytest.raises(Boom):
            run.join()
        (order,) = sim_orders(sim, venue)
        assert order.status.upper() == 'FILLED'
        # the broker asked the exchange before applying its policy: nothing is "left open"
        assert 'leaving 1 open order' not in caplog.text
        assert run.rec.strategy.position.size == pytest.approx(held(sim, venue), rel=1e-9)
        assert 'FinalState raised Boom' in caplog.text
    finally:
        sim.faults.clear()
        sim.stop()


# -- 7: a second Ctrl-C still cancels our orders ---------------------------------------------
class WaitsForSignals(FinalState):
    """Places a resting buy on its first live bar, then keeps Cerebro's
    thread inside next() until the signals have interrupted it (bounded)."""

    def next(self):
        super().next()
        if len(self.p.rec.bars) == 6:
            self.buy(size=self.p.rec.size, price=round(self.data.close[0] * 0.5, 1),
                     exectype=btl.Order.Limit)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                time.sleep(0.01)


def _signal_twice(sim, venue, rec, done):
    """The test's other thread: close a bar, then two SIGINTs, the second
    once the first was handled (Python runs handlers in the main thread)."""
    sent = []
    try:
        eventually(lambda: len(rec.bars) >= 5, 15)
        sim.step()
        eventually(lambda: [o for o in sim_orders(sim, venue) if o.status.upper() == 'NEW'], 15)
        os.kill(os.getpid(), signal.SIGINT)
        eventually(lambda: rec.strategy.data._stop_requested.is_set(), 10)
        os.kill(os.getpid(), signal.SIGINT)
        sent.append(True)
    finally:
        if not sent and rec.strategy is not None:
            rec.strategy.data.request_stop()    # a failed test must not hang the run
        done.set()


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_second_ctrl_c_still_cancels_open_orders(venue, caplog):
    assert threading.current_thread() is threading.main_thread()
    caplog.set_level(logging.INFO, logger='backtrader_live')
    sim = venue_sim(venue)
    exchange, market_type, symbol, topic = VENUES[venue][:4]
    run = LiveRun(sim, strategy=WaitsForSignals)    # only for its Recorder
    run.rec.size = VENUES[venue][5]
    done = threading.Event()
    helper = threading.Thread(target=_signal_twice, args=(sim, venue, run.rec, done),
                              name='test-signals', daemon=True)
    try:
        helper.start()
        with pytest.raises(KeyboardInterrupt):
            btl.Cerebro().run_live(exchange, symbol, '1h', WaitsForSignals, endpoint=sim.base_url,
                                   apikey=KEY, secret=SECRET, paper_trading=False,
                                   market_type=market_type, backfill_bars=5, max_bars=10,
                                   cancel_on_exit=True, strategy_params={'rec': run.rec})
        assert done.wait(10)
        (order,) = sim_orders(sim, venue)
        assert order.status.upper().startswith('CANCEL')
        assert 'run interrupted: applying the exit policy' in caplog.text
        assert 'cancel_on_exit: cancelling 1 open order(s)' in caplog.text
        assert 'is Canceled' in caplog.text
    finally:
        helper.join(20)
        sim.stop()


# -- 11: clear errors ----------------------------------------------------------------------
def _run_live(sim, **kwargs):
    args = dict(endpoint=sim.base_url, apikey=KEY, secret=SECRET)
    args.update(kwargs)
    return btl.Cerebro().run_live('binance', 'BTC/USDT', '1h', btl.Strategy, **args)


@pytest.mark.parametrize('kwargs,match', [
    (dict(endpoint='127.0.0.1:8080'),
     r"endpoint must be a base URL of the form http://host:port .*got '127.0.0.1:8080'"),
    (dict(endpoint='ftp://127.0.0.1'), 'endpoint must be a base URL'),
    (dict(backfill_bars=-5), 'backfill_bars must be an integer >= 0, got -5'),
    (dict(backfill_bars=2.5), 'backfill_bars must be an integer >= 0'),
    (dict(broker_kwargs={'cancel_on_exti': True}),
     r"broker_kwargs: unknown option 'cancel_on_exti' \(did you mean run_live\(cancel_on_exit=...\)"
     r"\?\); valid options of BinanceBroker: "),
    (dict(broker_kwargs={'levrage': 3}),
     r"broker_kwargs: unknown option 'levrage' \(did you mean 'leverage'\?\); valid options "
     r"of BinanceBroker: .*adopt_positions.*leverage"),
    (dict(store_kwargs={'timout': 3}),
     r"store_kwargs: unknown option 'timout' \(did you mean 'timeout'\?\); valid options of "
     r"BinanceStore: .*recv_window.*timeout"),
    (dict(data_kwargs={'qchek': 1}),
     r"data_kwargs: unknown option 'qchek' \(did you mean 'qcheck'\?\); valid options of "
     r"BinanceData: "),
    (dict(store_kwargs={'endpoint': 'http://x'}),
     r"store_kwargs: 'endpoint' is set by run_live itself; pass it as run_live\(endpoint=...\)"),
    (dict(data_kwargs={'backfill_bars': 3}), r"pass it as run_live\(backfill_bars=...\)"),
])
def test_bad_arguments_are_config_errors_naming_the_valid_form(sim, kwargs, match):
    with pytest.raises(btl.ConfigError, match=match):
        _run_live(sim, **kwargs)


def test_feed_refuses_a_negative_backfill(sim):
    store = btl.stores.BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url)
    with pytest.raises(btl.ConfigError, match='backfill_bars must be an integer >= 0, got -5'):
        store.getdata(dataname='BTC/USDT', backfill_bars=-5)


def test_a_configuration_error_at_start_is_not_blamed_on_the_strategy(sim, caplog):
    caplog.set_level(logging.ERROR, logger='backtrader_live')
    with pytest.raises(btl.ConfigError, match='open_orders must be one of'):
        _run_live(sim, paper_trading=False, broker_kwargs={'open_orders': 'keep'})
    assert 'the live run could not start (configuration or start-up error): ConfigError' \
        in caplog.text
    assert 'Strategy raised' not in caplog.text


@pytest.mark.parametrize('venue', FUTURES)
def test_leverage_out_of_range_is_a_config_error_with_the_range(venue, caplog):
    caplog.set_level(logging.ERROR, logger='backtrader_live')
    exchange, market_type, symbol = VENUES[venue][:3]
    sim = venue_sim(venue)
    try:
        with pytest.raises(btl.ConfigError, match=r'leverage=500 refused for %s: .*; allowed: '
                                                  r'1 to 1\d\d' % symbol.replace('/', '/')):
            btl.Cerebro().run_live(exchange, symbol, '1h', btl.Strategy, endpoint=sim.base_url,
                                   apikey=KEY, secret=SECRET, paper_trading=False,
                                   market_type=market_type, broker_kwargs={'leverage': 500})
        assert 'could not start (configuration or start-up error)' in caplog.text
    finally:
        sim.stop()


# -- 5: a fill while the start-up state is read ---------------------------------------------
def _fill_resting_order(sim, venue):
    """Move market time through bar 7 (not closing it): its low crosses the
    resting buy at 0.997 x bar 6's close, which fills on the exchange."""
    nxt = sim._call(lambda: sim.clock.next_close())
    sim.advance((nxt - sim.now_ms()) / 1000.0 - 1)
    return [o.status.upper() for o in sim_orders(sim, venue)]


@pytest.mark.parametrize('when', ['before the first listing', 'after the first listing'])
@pytest.mark.parametrize('venue', sorted(VENUES))
def test_a_fill_while_the_startup_state_is_read_is_not_lost(venue, when, monkeypatch):
    sim = venue_sim(venue)
    try:
        first = venue_run(sim, venue, strategy=FinalState, max_bars=1, script={6: _buy_below})
        first.rec.size = VENUES[venue][5]
        first.start().step(1).join()
        (order,) = sim_orders(sim, venue)
        assert order.status.upper() == 'NEW'
        store_cls = type(first.rec.strategy.broker.store)
        listed, fired = store_cls.get_open_orders, []

        def listing_with_a_fill(store, symbol=None):
            # The exchange fills the resting order exactly in the start-up window.
            if not fired and when == 'before the first listing':
                fired.append(_fill_resting_order(sim, venue))
            raws = listed(store, symbol)
            if not fired:
                fired.append(_fill_resting_order(sim, venue))
            return raws
        monkeypatch.setattr(store_cls, 'get_open_orders', listing_with_a_fill)
        run = venue_run(sim, venue, strategy=FinalState, max_bars=1)
        run.rec.size = VENUES[venue][5]
        run.start().step(1).join()
        assert fired == [['FILLED']]        # in the window, not by the bar after
        assert held(sim, venue) > 0
        assert run.rec.positions[0] == pytest.approx(held(sim, venue), rel=1e-9)
        assert run.rec.final_position == pytest.approx(held(sim, venue), rel=1e-9)
    finally:
        sim.stop()


# -- 12: after an outage, replayed bars are DELAYED; LIVE comes with the current bar --------
class TradesOnlyWhenLive(Scripted):
    """The usual live pattern: remember the status notify_data told, act on
    a bar only while LIVE (here: record which status each bar came with)."""

    def notify_data(self, data, status, *args, **kwargs):
        super().notify_data(data, status, *args, **kwargs)
        self.status = data._getstatusname(status)

    def next(self):
        self.p.rec.bar_status.append(getattr(self, 'status', None))
        super().next()


def _sim_behind_the_wall_clock(venue, hours=12):
    """A simulator whose market clock starts ``hours`` before the wall clock.

    ccxt caps a COIN-M klines request that has a start at its own wall clock
    (endTime = min(now, ...)); a test stepping the market past the wall clock
    would hide the very bars it closed from the gap fill. A real exchange's
    clock is the wall clock, so only the simulator's start moves."""
    return venue_sim(venue, start=int((time.time() - hours * 3600) * 1000))


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_bars_replayed_after_an_outage_are_delayed(venue, caplog):
    caplog.set_level(logging.INFO, logger='backtrader_live')
    sim = _sim_behind_the_wall_clock(venue)
    topic = VENUES[venue][3]
    try:
        run = venue_run(sim, venue, strategy=TradesOnlyWhenLive, max_bars=4)
        run.rec.bar_status = []
        run.start().step(1)
        assert sim.faults.drop_ws('public', seconds=None) == 1
        missed = sim.step(2)                        # closed while the stream is down
        sim.faults.restore_ws('public')
        sim.wait_subscribed(topic, timeout=15)
        eventually(lambda: len(run.rec.bars) == 8, 15)
        run.step(1)
        run.join()
        assert [round(b[1], 8) for b in run.rec.bars[6:8]] == [float(r[4]) for r in missed]
        # 5 bars of history, bar 6 live, 7-8 replayed over REST, 9 live again
        assert run.rec.bar_status[5:] == ['LIVE', 'DELAYED', 'DELAYED', 'LIVE']
        seen = run.rec.data_status
        assert seen[:2] == ['DELAYED', 'LIVE']
        assert seen[2:5] == ['CONNBROKEN', 'DELAYED', 'LIVE']
        assert 'live on endpoint %s' % sim.base_url in caplog.text
        assert 'live on testnet' not in caplog.text
    finally:
        sim.faults.clear()
        sim.stop()


def test_stream_reconnects_are_at_most_5s_apart():
    from backtrader_live.stream import WsStream
    stream = WsStream('test-ws', 'ws://127.0.0.1:9', lambda s, m: None)
    # an outage of any length: the next attempt is never more than 5 s away
    assert max(stream._backoff.delay(attempt) for attempt in range(60)) <= 5.0
    assert stream._backoff.delay(0) <= 0.25


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_a_hole_found_by_a_live_bar_is_filled_as_delayed(venue, monkeypatch):
    sim = _sim_behind_the_wall_clock(venue)
    try:
        run = venue_run(sim, venue, strategy=TradesOnlyWhenLive, max_bars=3)
        run.rec.bar_status = []
        data_cls = btl.cerebro.find_store(VENUES[venue][0]).DataCls
        on_bar, lost = data_cls._on_bar, []

        def loses_one(data, bar):
            # As when the feed's queue is full: the bar is dropped, the next
            # one reveals the hole.
            if bar.closed and len(run.rec.bars) == 6 and not lost:
                lost.append(bar.open_time)
                return None
            return on_bar(data, bar)
        monkeypatch.setattr(data_cls, '_on_bar', loses_one)
        run.start().step(1)
        sim.step()                              # bar 7: lost on its way
        eventually(lambda: lost, 10)
        run.step(1)                             # bar 8 shows the hole: 7 comes over REST
        run.join()
        assert len(lost) == 1 and len(run.rec.bars) == 8
        assert run.rec.bar_status[5:] == ['LIVE', 'DELAYED', 'LIVE']
        # after the history, the REST-filled bar counts as max_bars counts it
        # (the README demo's summary reads this)
        assert run.rec.strategy.data.live_bars == 3
    finally:
        sim.stop()


# -- the less travelled branches -------------------------------------------------------------
def test_runstop_without_quicknotify_still_hands_the_final_fills_over(caplog):
    caplog.set_level(logging.INFO, logger='backtrader_live')
    venue = 'binance-usdm'
    sim = venue_sim(venue)
    try:
        run = venue_run(sim, venue, strategy=FinalState, max_bars=5, quicknotify=False,
                        script={6: _buy_below, 7: lambda s: s.env.runstop()})
        run.rec.size = VENUES[venue][5]
        run.start().step(1)
        assert sim.faults.stall_ws('private', seconds=None) == 1
        run.step(1)
        run.join()
        assert run.rec.statuses()[-1] == 'Completed'
        assert run.rec.final_position == pytest.approx(held(sim, venue), rel=1e-9)
        assert run.rec.final_position > 0
    finally:
        sim.faults.clear()
        sim.stop()


def test_a_start_up_state_that_keeps_changing_is_read_a_bounded_number_of_times(
        monkeypatch, caplog):
    from backtrader_live import restart
    caplog.set_level(logging.INFO, logger='backtrader_live')
    venue = 'binance-spot'
    sim = venue_sim(venue)
    try:
        first = venue_run(sim, venue, strategy=FinalState, max_bars=1, script={6: _buy_below})
        first.rec.size = VENUES[venue][5]
        first.start().step(1).join()
        store_cls = type(first.rec.strategy.broker.store)
        listed, calls = store_cls.get_open_orders, []

        def ever_changing(store, symbol=None):
            # A listing whose order shows a new fill every time (a busy order).
            raws = listed(store, symbol)
            calls.append(1)
            return [dict(r, filled=len(calls) * 1e-5) for r in raws]
        monkeypatch.setattr(store_cls, 'get_open_orders', ever_changing)
        run = venue_run(sim, venue, strategy=FinalState, max_bars=1)
        run.start().step(1).join()
        assert len(calls) == 1 + restart.SNAPSHOT_READINGS
        assert 'open orders kept changing over 4 readings' in caplog.text
        assert _startup_found(run)['open_orders'][0]['action'] == 'tracked'
    finally:
        sim.stop()


def _startup_found(run):
    (found,) = [m[1] for m in run.rec.store_msgs if m[0] == 'startup']
    return found


class _SlowBroker:
    """Stands in for a broker whose exchange no longer answers."""

    class p:
        cancel_on_exit = True

    def __init__(self):
        self.release = threading.Event()

    def stop(self):
        self.release.wait(10)


def test_the_exit_policy_after_an_interrupt_is_bounded(caplog):
    from backtrader_live.cerebro import _exit_after_interrupt
    broker = _SlowBroker()
    try:
        _exit_after_interrupt(broker, 0.05)
        assert 'the exit policy did not finish within 0s' in caplog.text
    finally:
        broker.release.set()
        for t in threading.enumerate():
            if t.name == 'bt-live-exit':
                t.join(5)


def test_leverage_range_unknown_is_said_so():
    from backtrader_live.derivatives import leverage_range

    class Store:
        class exchange:
            @staticmethod
            def market(symbol):
                return {'limits': {'leverage': {'max': None}}}

        @staticmethod
        def call(method, *args):
            raise btl.errors.RetryableError('unreachable')
    assert leverage_range(Store, 'X/USDT:USDT') == \
        "allowed range unknown (see the exchange's leverage brackets for X/USDT:USDT)"


@pytest.mark.parametrize('venue', FUTURES)
def test_margin_mode_refused_at_start_is_a_config_error(venue, caplog):
    caplog.set_level(logging.ERROR, logger='backtrader_live')
    exchange, market_type, symbol = VENUES[venue][:3]
    sim = venue_sim(venue)
    try:
        first = venue_run(sim, venue, strategy=FinalState, max_bars=1,
                          script={6: lambda s: s.buy(size=s.p.rec.size)})
        first.rec.size = VENUES[venue][5]
        first.start().step(1).join()
        assert held(sim, venue) > 0        # a position: the mode cannot change now
        with pytest.raises(btl.ConfigError, match=r"margin_mode='isolated' refused for %s: .*; "
                                                  r"the exchange refuses a change while a "
                                                  r"position or order is open" % symbol):
            btl.Cerebro().run_live(exchange, symbol, '1h', btl.Strategy, endpoint=sim.base_url,
                                   apikey=KEY, secret=SECRET, paper_trading=False,
                                   market_type=market_type,
                                   broker_kwargs={'margin_mode': 'isolated'})
        assert 'could not start (configuration or start-up error)' in caplog.text
    finally:
        sim.stop()


def test_the_replay_after_an_outage_reads_as_a_reconnect():
    from backtrader_live.notifications import describe_data_status
    back = describe_data_status('BTC/USDT', 'DELAYED', 'CONNBROKEN')
    assert back.message == 'BTC/USDT: reconnected, replaying missed bars (DELAYED)'
    assert back.level == logging.INFO and back.data['reconnected']
    assert describe_data_status('BTC/USDT', 'LIVE', 'DELAYED').message == \
        'BTC/USDT: data is LIVE'
    assert describe_data_status('BTC/USDT', 'DELAYED').message == \
        'BTC/USDT: loading history (DELAYED)'
