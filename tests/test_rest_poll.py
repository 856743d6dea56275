"""While the account stream is down the broker polls REST on its own
schedule, not with the bars: a fill it finds between two bars reaches the
strategy at once (the poll wakes Cerebro's loop; nothing waits for a bar).

A guard for the suspicion that the REST fallback's notifications waited for
the next bar (test_rest_fallback_when_the_user_stream_cannot_connect hung
under load; the cause was a bar lost before the market subscription:
tests/test_late_subscription.py). Cerebro's loop runs a round at least every
``qcheck`` (0.5 s) with no bar and no event, and each round may poll.
"""
import pytest

from helpers import eventually
from venues import ALL, refused_user_stream_run, sim_orders, venue_sim


@pytest.mark.parametrize('venue', ALL)
def test_a_fill_between_bars_is_found_by_the_poll_without_a_bar(venue):
    with venue_sim(venue) as sim:
        run = refused_user_stream_run(sim, venue, 2, rest_poll_interval=0.5)
        run.step(1)             # bar 6: the limit rests
        assert run.rec.statuses() == ['Submitted', 'Accepted']
        bars = len(run.rec.bars)
        sim.advance(59 * 60)    # inside bar 7: its low fills the limit, no bar closes
        (order,) = sim_orders(sim, venue)
        assert order.status == 'FILLED'
        eventually(lambda: 'Completed' in run.rec.statuses() or run.error, 10,
                   message='the polled fill waited for a bar')
        assert len(run.rec.bars) == bars, 'a bar brought it, not the poll'
        assert not run.rec.strategy.broker.store.user_stream_live
        run.step(1)
        run.join()
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Completed']
    assert run.rec.positions[-1] > 0
