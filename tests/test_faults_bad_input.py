"""Bad input: each case gets a clear error and nothing is lost or left behind.
The rows recorded here are the bad-input table of docs/faults.md."""
import logging

import pytest

import backtrader_live as btl
from faultkit import EXCHANGES, FAST, TOPIC, Tracked, make_sim, matrix_rows, record  # noqa: F401
from helpers import KEY, SECRET
from livekit import LiveRun


@pytest.fixture(params=EXCHANGES)
def xsim(request):
    sim = make_sim(request.param)
    yield request.param, sim
    sim.stop()


def _live(sim, exchange, script, steps=1, **kwargs):
    run = LiveRun(sim, exchange=exchange, topic=TOPIC[exchange], strategy=Tracked,
                  script=script, backfill_bars=5, max_bars=steps, store_kwargs=FAST, **kwargs)
    run.rec.order_log = []
    return run.start()


def _run_live(sim, name, **kwargs):
    args = dict(endpoint=sim.base_url, apikey=KEY, secret=SECRET, paper_trading=False,
                backfill_bars=2, max_bars=1)
    args.update(kwargs)
    symbol, timeframe = args.pop('symbol', 'BTC/USDT'), args.pop('timeframe', '1h')
    return btl.Cerebro().run_live(args.pop('exchange', name), symbol, timeframe,
                                  btl.Strategy, **args)


def _bad(kind, exchange, exc):
    record(kind, exchange, '%s: %s' % (type(exc).__name__, str(exc)[:110]), table='bad input')


CONFIG_CASES = [
    ('unknown exchange', dict(exchange='nosuchexchange'), 'unknown exchange'),
    ('unknown symbol', dict(symbol='FOO/BAR'), 'unknown symbol'),
    ('contract symbol on spot', dict(symbol='BTC/USDT:USDT'), 'looks like a linear symbol'),
    ('unknown timeframe', dict(timeframe='7m'), 'unknown timeframe'),
    ('unknown market type', dict(market_type='options'), 'unknown market_type'),
]


@pytest.mark.parametrize('case,kwargs,match', CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_configuration_errors_are_clear(xsim, case, kwargs, match):
    exchange, sim = xsim
    with pytest.raises(btl.errors.ConfigError, match=match) as info:
        _run_live(sim, exchange, **kwargs)
    assert sim.orders() == []
    _bad(case, exchange if case != 'unknown exchange' else 'any', info.value)


def test_a_timeframe_one_exchange_lacks(xsim):
    exchange, sim = xsim
    if exchange == 'binance':
        record('timeframe the exchange does not serve (8h)', exchange,
               'n/a: Binance serves 8h', table='bad input')
        return
    with pytest.raises(btl.errors.ConfigError, match="unknown timeframe '8h'") as info:
        _run_live(sim, exchange, timeframe='8h')
    _bad('timeframe the exchange does not serve (8h)', exchange, info.value)


def test_bad_keys_stop_at_once_without_retrying(xsim):
    exchange, sim = xsim
    calls = sim.faults.rest('*', 'delay', seconds=0, times=None)    # counts requests
    with pytest.raises(btl.errors.AuthenticationFailed) as info:
        _run_live(sim, exchange, apikey='not-a-key', secret='nope')
    assert calls.hits <= 6, 'an authentication error must not be retried'
    assert 'not-a-key' not in str(info.value) and 'nope' not in str(info.value)
    _bad('bad API key', exchange, info.value)


def test_missing_trade_permission(xsim):
    exchange, sim = xsim
    sim.faults.rest('create_order', 'error', error='permission')
    run = _live(sim, exchange, {6: lambda s: s.buy(size=0.01)}, steps=3)
    run.step(1)
    with pytest.raises(btl.errors.AuthenticationFailed) as info:
        run.join()
    assert run.rec.statuses() == ['Submitted', 'Rejected'] and sim.orders() == []
    _bad('missing trade permission', exchange, info.value)


def _order_case(sim, exchange, script):
    run = _live(sim, exchange, {6: script})
    run.step(1)
    run.join()
    return run


def test_amount_below_the_minimum(xsim):
    exchange, sim = xsim
    run = _order_case(sim, exchange, lambda s: s.buy(size=0.000001))
    (reason,) = [o[4] for o in run.rec.orders if o[0] == 'Rejected']
    assert 'below the market step' in reason and sim.orders() == []
    record('amount below the minimum', exchange, 'Rejected before sending: ' + reason,
           table='bad input')


def test_price_off_the_tick_is_rounded(xsim):
    exchange, sim = xsim
    run = _order_case(sim, exchange, lambda s: s.buy(size=0.0123456789, price=1234.56789,
                                                     exectype=btl.Order.Limit))
    (order,) = sim.orders()
    assert float(order.price) == 1234.57 and float(order.qty) == 0.01234
    assert run.rec.statuses() == ['Submitted', 'Accepted']
    record('price off the tick, amount off the step', exchange,
           'rounded before sending (price to the tick, amount down to the step): '
           '1234.56789 x 0.0123456789 -> 1234.57 x 0.01234', table='bad input')


def test_insufficient_balance(xsim):
    exchange, sim = xsim
    run = _order_case(sim, exchange, lambda s: s.buy(size=50.0))
    (reason,) = [o[4] for o in run.rec.orders if o[0] == 'Rejected']
    assert 'insufficient' in reason.lower() and sim.orders() == []
    record('insufficient balance', exchange, 'Rejected with the exchange\'s reason: '
           + reason[:90], table='bad input')


@pytest.mark.parametrize('cancel_on_exit', [False, True])
def test_strategy_exception_stops_trading_safely(xsim, cancel_on_exit, caplog):
    exchange, sim = xsim

    def fail(s):
        return 1 / 0
    script = {6: lambda s: s.buy(size=0.01, price=round(s.data.close[0] * 0.5, 2),
                                 exectype=btl.Order.Limit), 7: fail}
    run = _live(sim, exchange, script, steps=3, cancel_on_exit=cancel_on_exit)
    with caplog.at_level(logging.ERROR, logger='backtrader_live.cerebro'):
        run.step(2)
        with pytest.raises(ZeroDivisionError):
            run.join()
    (order,) = sim.orders()
    assert order.status == ('CANCELED' if cancel_on_exit else 'NEW')
    (line,) = [m for m in (r.getMessage() for r in caplog.records)
               if 'raised ZeroDivisionError' in m]
    assert 'Tracked raised ZeroDivisionError' in line and 'bar 20' in line
    if cancel_on_exit:
        record('exception in the strategy\'s next()', exchange,
               'logged with strategy, bar and traceback; run_live re-raises it; open orders '
               'cancelled (cancel_on_exit=True) or left', table='bad input')
