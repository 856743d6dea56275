"""NaN, inf, strings and missing prices reject that one order with a reason
naming the field and the accepted values; the run goes on (issue 11, defect 3).
Paper and live alike, whether or not risk_management is on."""
import decimal
import pytest

import backtrader_live as btl
from venues import ALL, live_run, unit, venue_sim

Order = btl.Order
NAN, INF = float('nan'), float('inf')


def _bad_orders(u):
    """(what is wrong, the reason's start, how the strategy places it)"""
    return [
        ('NaN size', 'size nan is not valid', lambda s: s.buy(size=NAN)),
        ('inf size', 'size inf is not valid', lambda s: s.sell(size=INF)),
        ('str size to the broker', "size '0.01' is not valid",
         lambda s: s.broker.buy(s, s.data, size='0.01')),
        ('NaN limit price', 'price nan is not valid for a Limit order',
         lambda s: s.buy(size=u, price=NAN, exectype=Order.Limit)),
        ('str limit price', "price '100' is not valid for a Limit order",
         lambda s: s.sell(size=u, price='100', exectype=Order.Limit)),
        ('limit without price', 'a Limit order needs a price',
         lambda s: s.buy(size=u, exectype=Order.Limit)),
        ('inf stop price', 'price -inf is not valid for a Stop order',
         lambda s: s.sell(size=u, price=-INF, exectype=Order.Stop)),
        ('NaN plimit', 'plimit nan is not valid for a StopLimit order',
         lambda s: s.buy(size=u, price=s.data.close[0] * 1.5, plimit=NAN,
                         exectype=Order.StopLimit)),
        ('NaN take profit', 'takeProfitPrice nan is not valid',
         lambda s: s.sell(size=u, takeProfitPrice=NAN)),
        ('str reduceOnly', "reduceOnly 'yes' is not valid: reduceOnly must be True or False",
         lambda s: s.sell(size=u, reduceOnly='yes')),
    ]


def _script(u, placed):
    def bar6(s):
        for _, _, place in _bad_orders(u):
            placed.append(place(s))
        placed.append(s.buy(size=decimal.Decimal(repr(u))))   # a Decimal is a number
    return {6: bar6}


def _check(run, placed, u):
    bad = _bad_orders(u)
    assert run.error is None and len(run.rec.bars) == 5 + 2   # the run went on
    assert len(placed) == len(bad) + 1
    for (what, reason, _), order in zip(bad, placed):
        assert order.status == Order.Rejected, what
        assert order.info['reject_reason'].startswith(reason), (what, order.info['reject_reason'])
        assert 'must be' in order.info['reject_reason']
    assert placed[-1].status == Order.Completed
    assert placed[-1].executed.size == pytest.approx(u, rel=0.01)
    rejected = [o for o in run.rec.orders if o[0] == 'Rejected']
    assert len(rejected) == len(bad)          # each told to the strategy once


@pytest.mark.parametrize('venue', ALL)
def test_bad_numbers_are_rejected_live(venue):
    u, placed = unit(venue), []
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script=_script(u, placed), max_bars=2).start()
        run.step(2)
        run.join()
    _check(run, placed, u)


@pytest.mark.parametrize('risk_management', [True, False])
@pytest.mark.parametrize('venue', ['binance-spot', 'bybit-linear'])
def test_bad_numbers_are_rejected_in_paper_mode(venue, risk_management):
    u, placed = unit(venue), []
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script=_script(u, placed), max_bars=2, paper_trading=True,
                       broker_kwargs={'risk_management': risk_management}).start()
        run.step(2)
        run.join()
    _check(run, placed, u)


def test_nan_trailing_stop_in_paper_mode():
    from backtrader_live.orders import input_problem
    reason = input_problem(Order.StopTrail, 1.0, None, None, NAN, None)
    assert reason.startswith('trailamount nan is not valid for a StopTrail order')
    assert input_problem(Order.StopTrail, 1.0, None, None, None, 'x').startswith(
        "trailpercent 'x' is not valid")
    assert input_problem(Order.Market, True).startswith('size True is not valid')
    assert input_problem(Order.Market, -2.0) is None and input_problem(Order.Market, 0) \
        .startswith('size 0 is not valid')


def test_upstream_buy_and_sell_take_the_arguments_we_check():
    """The check binds upstream BackBroker.buy's signature for buy() and sell()."""
    import inspect
    from backtrader.brokers import BackBroker
    buy, sell = inspect.signature(BackBroker.buy), inspect.signature(BackBroker.sell)
    assert buy == sell
    for name in ('size', 'price', 'plimit', 'exectype', 'trailamount', 'trailpercent',
                 'kwargs'):
        assert name in buy.parameters
