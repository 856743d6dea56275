"""An order the exchange ends because its time in force ran out reaches the
strategy as Expired on both exchanges (issue 11, item 10c): Binance says
EXPIRED; Bybit says Cancelled with the reason (rejectReason
EC_NoImmediateQtyToFill for IOC, EC_CancelForNoFullFill for FOK)."""
import pytest

import backtrader_live as btl
from backtrader_live.events import CANCELED, EXPIRED, order_from_ccxt
from backtrader_live.stores.bybit import BybitStore
from venues import ALL, live_run, sim_orders, unit, venue_sim


@pytest.mark.parametrize('tif', ['IOC', 'FOK'])
@pytest.mark.parametrize('venue', ALL)
def test_immediate_limit_that_cannot_fill_expires(venue, tif):
    def place(s):
        s.order = s.buy(size=unit(venue), price=round(s.data.close[0] * 0.8, 1),
                        exectype=btl.Order.Limit, timeInForce=tif)
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: place}, max_bars=2).start()
        run.step(2)
        run.join()
        (order,) = sim_orders(sim, venue)
    assert order.status == 'EXPIRED'
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Expired']


def test_bybit_rest_answer_of_an_expired_order():
    """The REST shape (ccxt says 'canceled'): the exchange's reason decides."""
    table = BybitStore.EXPIRED_WHEN
    raw = {'id': '1', 'clientOrderId': 'c', 'status': 'canceled', 'amount': 1.0,
           'filled': 0.0, 'info': {'orderStatus': 'Cancelled',
                                   'rejectReason': 'EC_NoImmediateQtyToFill'}}
    assert order_from_ccxt(raw, expired_when=table).status == EXPIRED
    raw['info']['rejectReason'] = 'EC_NoError'            # cancelled by us
    assert order_from_ccxt(raw, expired_when=table).status == CANCELED
    assert order_from_ccxt(dict(raw, status='expired')).status == EXPIRED   # Binance
    # a status ccxt has no word for comes through as the exchange spelled it
    assert order_from_ccxt(dict(raw, status='Expired')).status == EXPIRED
