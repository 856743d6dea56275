"""Stop and StopLimit orders on all six venues, end to end: placed as the
exchange wants a conditional order, triggered by the simulator's clock,
filled, and reported Completed to an unchanged backtrader strategy.

Bybit spot conditional orders carry ``orderFilter=StopOrder`` and no
``triggerDirection`` (Bybit decides the direction from the last price);
its derivatives need the direction.
"""
import pytest

import backtrader_live as btl
from helpers import eventually
from livekit import LiveRun
from venues import VENUES as _VENUES     # the one venue table (tests/venues.py)

# the order sizes these stops were written with (COIN-M: 2 contracts, not 1)
_SIZE = {'binance-coinm': 2}
VENUES = {v: row[:5] + (_SIZE.get(v, row[5]),) for v, row in _VENUES.items()}


@pytest.fixture
def venue_sim(request, sim):
    venue = request.node.callspec.params['venue']
    if VENUES[venue][0] == 'bybit':
        from backtrader_live.sim import BybitSimulator
        with BybitSimulator(speed=None, start_index=600) as bybit:
            yield bybit
    else:
        yield sim


def _run(sim, venue, **kwargs):
    exchange, market_type, symbol, topic, market = VENUES[venue][:5]
    return LiveRun(sim, exchange=exchange, symbol=symbol, topic=topic, user_market=market,
                   market_type=market_type, **kwargs)


def _exit_size(venue):
    """What the protective sell closes: spot fees are taken from the bought
    coin, so a spot stop sells a little less than was bought."""
    size = VENUES[venue][5]
    return size * 0.9 if VENUES[venue][4] == 'spot' else size


@pytest.mark.parametrize('exectype', ['Stop', 'StopLimit'])
@pytest.mark.parametrize('venue', sorted(VENUES))
def test_a_protective_stop_triggers_fills_and_completes(venue_sim, venue, exectype):
    sim, market = venue_sim, VENUES[venue][4]

    def protect(s):
        s.buy(size=VENUES[venue][5])
        # 0.995 x 4191.53 = 4170.6: the real bar 608 (low 4158.84) crosses it;
        # the limit of the StopLimit is 1 % below, so it fills once triggered.
        stop = round(s.data.close[0] * 0.995, 1)
        s.stop_order = s.sell(size=_exit_size(venue), price=stop,
                              plimit=round(stop * 0.99, 1),
                              exectype=getattr(btl.Order, exectype))
    run = _run(venue_sim, venue, script={6: protect}, max_bars=10).start()
    run.step(2)
    # Resting, not refused: the exchange holds it as a conditional order.
    statuses = run.rec.statuses()
    assert statuses.count('Completed') == 1 and statuses.count('Accepted') == 2, run.rec.orders
    assert 'Rejected' not in statuses
    resting = [o for o in sim.orders(market=market) if o.side.upper() == 'SELL']
    assert len(resting) == 1 and resting[0].stop_price and not resting[0].triggered
    run.step(7)
    # The fill comes on the user stream, the next bar on the market stream.
    eventually(lambda: run.rec.statuses().count('Completed') == 2)
    run.step(1)
    run.join()
    assert 'Rejected' not in run.rec.statuses()
    status, size, price = run.rec.orders[-1][:3]
    assert status == 'Completed' and size == pytest.approx(-_exit_size(venue))
    assert price <= round(run.rec.bars[5][1] * 0.995, 1)
    (sell,) = [o for o in sim.orders(market=market) if o.side.upper() == 'SELL']
    assert sell.triggered and not sell.is_open
    assert sell.is_limit == (exectype == 'StopLimit')


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_a_resting_stop_is_cancelled_on_the_exchange(venue_sim, venue):
    """A conditional order the strategy cancels is gone from the exchange
    (Bybit spot cancels a conditional order only with orderFilter=StopOrder)."""
    sim, market = venue_sim, VENUES[venue][4]

    def place(s):
        # 20 % above the market: no bar of the run reaches it.
        s.entry = s.buy(size=VENUES[venue][5], price=round(s.data.close[0] * 1.2, 1),
                        exectype=btl.Order.Stop)
    run = _run(venue_sim, venue, script={6: place, 7: lambda s: s.cancel(s.entry)},
               max_bars=3).start()
    run.step(3)
    run.join()
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Canceled'], run.rec.orders
    (buy,) = sim.orders(market=market)
    assert not buy.is_open and not buy.triggered
