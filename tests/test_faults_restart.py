"""Restart: run_live starts where the exchange is. Open orders found at start
are tracked (the strategy sees and can cancel them), cancelled or left per
``open_orders``; positions are adopted; fills made before the start are not
reported again; a 'startup' store notification says what was found."""
import pytest

import backtrader_live as btl
from faultkit import (EXCHANGES, FAST, TOPIC, Tracked, check_bars, check_position,  # noqa: F401
                      make_sim, matrix_rows, record)
from livekit import LiveRun


def _run(sim, exchange, script, steps, **kwargs):
    run = LiveRun(sim, exchange=exchange, topic=TOPIC[exchange], strategy=Tracked,
                  script=script, backfill_bars=5, max_bars=steps,
                  store_kwargs=FAST, **kwargs)
    run.rec.order_log = []
    run.start()
    run.step(steps)
    run.join()
    return run


def _limit(factor, side, size):
    def place(s):
        getattr(s, side)(size=size, price=round(s.data.close[0] * factor, 2),
                         exectype=btl.Order.Limit)
    return place


def _first_run(sim, exchange):
    """Buys 0.01 and leaves a buy at 0.5x and a sell at 1.5x resting."""
    def act(s):
        s.buy(size=0.01)
        _limit(0.5, 'buy', 0.01)(s)
        _limit(1.5, 'sell', 0.004)(s)
    return _run(sim, exchange, {6: act}, 1)


def _adopted(strategy):
    return [o for o in getattr(strategy, 'orders_seen', {}).values() if o.info.get('adopted')]


def _startup(run):
    (found,) = [m[1] for m in run.rec.store_msgs if m[0] == 'startup']
    return found


@pytest.mark.parametrize('exchange', EXCHANGES)
def test_open_orders_are_tracked_and_cancellable(exchange):
    sim = make_sim(exchange)
    try:
        _first_run(sim, exchange)
        held = float(sim.balances()['BTC']['free']) + float(sim.balances()['BTC']['locked'])

        def cancel_adopted_buy(s):
            s.cancel(next(o for o in _adopted(s) if o.isbuy()))
        run = _run(sim, exchange, {6: cancel_adopted_buy}, 2)
        adopted = _adopted(run.rec.strategy)
        assert sorted(o.isbuy() for o in adopted) == [False, True]
        assert all(o.owner is None for o in adopted)         # cerebro's first strategy saw them
        found = _startup(run)
        assert [o['action'] for o in found['open_orders']] == ['tracked', 'tracked']
        assert found['position'][0] == pytest.approx(held)
        assert run.rec.positions[0] == pytest.approx(held)   # adopted before the first next()
        statuses = sorted(o.status for o in sim.orders())
        assert statuses == ['CANCELED', 'FILLED', 'NEW']      # the sell still rests, tracked
        # every order open at the start is one the strategy now knows
        assert {o.info['client_id'] for o in adopted} == {
            o.client_id for o in sim.orders() if o.status != 'FILLED'}
        check_position(run, sim, exchange)
    finally:
        sim.stop()
    record('restart with a position and 2 open orders (track)', exchange,
           'position adopted; both orders notified to the strategy (owner None), one '
           'cancelled by it; startup notification lists them')


@pytest.mark.parametrize('policy,final', [('cancel', ['CANCELED', 'CANCELED', 'FILLED']),
                                          ('leave', ['FILLED', 'NEW', 'NEW'])])
@pytest.mark.parametrize('exchange', EXCHANGES)
def test_open_orders_cancelled_or_left_per_option(exchange, policy, final):
    sim = make_sim(exchange)
    try:
        _first_run(sim, exchange)
        run = _run(sim, exchange, {}, 1, broker_kwargs={'open_orders': policy})
        assert not _adopted(run.rec.strategy)
        actions = {o['action'] for o in _startup(run)['open_orders']}
        assert actions == {'cancelled' if policy == 'cancel' else 'left alone'}
        assert sorted(o.status for o in sim.orders()) == final
    finally:
        sim.stop()
    if policy == 'cancel':
        record('restart with open orders (open_orders="cancel" / "leave")', exchange,
               'cancelled on the exchange / left alone untracked; both listed at startup')


@pytest.mark.parametrize('exchange', EXCHANGES)
def test_fills_before_the_restart_are_not_reported_again(exchange):
    # A small share of each bar's volume: the 0.05 buy fills across bars.
    sim = make_sim(exchange, liquidity=0.002)
    try:
        _run(sim, exchange, {6: _limit(0.997, 'buy', 0.05)}, 2)
        (order,) = sim.orders()
        before = float(order.executed)
        assert order.status == 'PARTIALLY_FILLED' and 0 < before < 0.05
        restart_trades = len(sim.trades())
        run = _run(sim, exchange, {}, 7)       # bar 608 crosses the price again
        (order,) = sim.orders()
        assert order.status == 'FILLED'
        (adopted,) = _adopted(run.rec.strategy)
        assert adopted.info['filled_before'] == pytest.approx(before)
        new = sim.trades()[restart_trades:]
        reported = [e for e in run.rec.order_log if e[2] in ('Partial', 'Completed')]
        assert len(reported) == len(new) >= 1
        net = sum(float(t.qty) - float(t.commission) for t in new)   # fee in BTC
        assert adopted.executed.size == pytest.approx(net, abs=1e-9)
        check_position(run, sim, exchange)
    finally:
        sim.stop()
    record('restart with a partly filled order', exchange,
           'earlier fills in the adopted position only; later fills reported once')


FUTURES = {'binance': ('futures', 'futures'), 'bybit': ('linear', 'linear')}


@pytest.mark.parametrize('exchange', EXCHANGES)
def test_futures_position_and_conditional_order_adopted(exchange):
    sim = make_sim(exchange)
    market, user = FUTURES[exchange]
    futures = dict(symbol='BTC/USDT:USDT', market_type='futures', user_market=user)
    try:
        def protect(s):
            s.buy(size=0.005)
            s.sell(size=0.005, price=round(s.data.close[0] * 0.9, 1), exectype=btl.Order.Stop)
        _run(sim, exchange, {6: protect}, 1, **futures)
        run = _run(sim, exchange, {6: lambda s: s.cancel(_adopted(s)[0])}, 2, **futures)
        (stop,) = _adopted(run.rec.strategy)
        assert stop.exectype == btl.Order.Stop and stop.status == btl.Order.Canceled
        assert run.rec.positions[0] == pytest.approx(0.005)
        bars = check_bars(run, sim)
        assert [o.status for o in sim.orders(market=market)] == ['FILLED', 'CANCELED']
    finally:
        sim.stop()
    record('restart with a futures position and a stop order', exchange,
           'position adopted, the conditional order tracked and cancelled by the '
           'strategy; %d bars in order' % bars)


@pytest.mark.parametrize('raw,expected', [
    ({'type': 'market'}, (btl.Order.Market, None, None)),
    ({'type': 'limit', 'price': 100.0}, (btl.Order.Limit, 100.0, None)),
    ({'type': 'stop_market', 'triggerPrice': 90.0}, (btl.Order.Stop, 90.0, None)),
    ({'type': 'market', 'stopPrice': 90.0, 'price': 0}, (btl.Order.Stop, 90.0, None)),
    ({'type': 'stop_loss_limit', 'triggerPrice': 90.0, 'price': 89.0},
     (btl.Order.StopLimit, 90.0, 89.0)),
])
def test_exchange_orders_map_to_backtrader_exec_types(raw, expected):
    from backtrader_live.restart import _exectype
    assert _exectype(raw) == expected


def test_a_bad_open_orders_option_is_refused():
    sim = make_sim('binance')
    try:
        run = LiveRun(sim, broker_kwargs={'open_orders': 'keep'})
        run.start(wait_subscribed=False)
        with pytest.raises(btl.errors.ConfigError, match="open_orders must be one of"):
            run.join()
    finally:
        sim.stop()


def test_open_orders_not_listed_at_first_are_tracked_on_a_later_bar():
    sim = make_sim('binance')
    try:
        _first_run(sim, 'binance')
        rule = sim.faults.rest('open_orders', 'server_error', status=503, times=2)
        run = LiveRun(sim, topic=TOPIC['binance'], strategy=Tracked, backfill_bars=5,
                      max_bars=3, store_kwargs=dict(FAST, rest_retries=0))
        run.rec.order_log = []
        run.start()
        run.step(3)
        run.join()
        assert rule.hits == 2
        assert len(_adopted(run.rec.strategy)) == 2
        assert [o['action'] for o in _startup(run)['open_orders']] == ['tracked', 'tracked']
    finally:
        sim.stop()
