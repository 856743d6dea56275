"""The order lifecycle on every exchange and market type: partial fills then
Completed, a resting limit cancelled, a rejection with the exchange's reason."""
import pytest

import backtrader_live as btl
from venues import ALL, THIN_BOOK, live_run, market_type, sim_orders, unit, venue_sim


def _lifecycle_run(venue, script, max_bars):
    """A run on the venue's simulator with a thin book (tests/venues.py)."""
    with venue_sim(venue, **THIN_BOOK[venue]) as sim:
        run = live_run(sim, venue, script=script, max_bars=max_bars).start()
        run.step(max_bars)
        run.join()
        return run, sim_orders(sim, venue)


@pytest.mark.parametrize('venue', ALL)
def test_partial_fills_then_completed(venue):
    u = unit(venue)
    run, orders = _lifecycle_run(venue, {6: lambda s: s.buy(size=5 * u)}, 2)
    statuses = run.rec.statuses()
    assert statuses[:2] == ['Submitted', 'Accepted'] and statuses[-1] == 'Completed'
    assert statuses.count('Partial') >= 2, statuses
    (order,) = orders
    assert order.status in ('FILLED', 'Filled') and float(order.executed) == pytest.approx(5 * u)


@pytest.mark.parametrize('venue', ALL)
def test_resting_limit_is_cancelled(venue):
    u = unit(venue)

    def place(s):
        s.order = s.buy(size=u, price=round(s.data.close[0] * 0.8, 1), exectype=btl.Order.Limit)
    run, orders = _lifecycle_run(venue, {6: place, 7: lambda s: s.cancel(s.order)}, 3)
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Canceled']
    (order,) = orders
    assert order.status.upper().startswith('CANCEL')


@pytest.mark.parametrize('venue', ALL)
def test_rejection_carries_the_exchanges_reason(venue):
    u, coin_margined = unit(venue), market_type(venue) in ('delivery', 'inverse')
    # Far more than the account can pay for (or margin, at the default leverage).
    big = (1000 if coin_margined else 100000) * u
    run, orders = _lifecycle_run(venue, {6: lambda s: s.buy(size=big)}, 1)
    status, _, _, _, reason = run.rec.orders[-1]
    assert status == 'Rejected'
    assert any(w in reason.lower() for w in ('insufficient', 'margin', 'balance', 'exceed')), reason
    assert len(run.rec.bars) == 6       # the strategy went on
