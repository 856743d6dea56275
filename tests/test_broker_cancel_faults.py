"""A cancel whose answer is lost never ends the run and is never sent again
blindly: the order stays alive with its cancel pending until the stream or a
REST look-up by client order id says how it ended (issue 11, defect 1)."""
import pytest

import backtrader_live as btl
from helpers import eventually
from venues import ALL, DERIVATIVES, live_run, sim_orders, unit, venue_sim

# Short timeouts so a lost answer is given up on quickly (see faultkit.FAST).
FAST = {'recv_window': 600, 'timeout': 1.0, 'stream_heartbeat': 0.3, 'stream_timeout': 1.0}


def _rest_limit(venue):
    def place(s):
        s.order = s.buy(size=unit(venue), price=round(s.data.close[0] * 0.8, 1),
                        exectype=btl.Order.Limit)
    return place


@pytest.mark.parametrize('action', ['accept_then_reset', 'accept_then_timeout'])
@pytest.mark.parametrize('venue', ALL)
def test_cancel_answer_lost_and_lookup_failing(venue, action):
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: _rest_limit(venue), 7: lambda s: s.cancel(s.order)},
                       max_bars=4, store_kwargs=FAST).start()
        run.step(1)                                       # bar 6: the limit rests
        lost = sim.faults.rest('cancel_order', action, seconds=2.0)
        lookups = sim.faults.rest('fetch_order', 'reset', times=None)
        resent = sim.faults.rest('cancel_order', 'delay', seconds=0.0, times=None)
        run.step(1)                                       # bar 7: the cancel
        assert lost.hits == 1, 'the fault did not fire'
        sim.faults.clear()
        run.step(2)
        run.join()
        (order,) = sim_orders(sim, venue)
    assert resent.hits == 0, 'the cancel was sent again blindly'
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Canceled']
    assert order.status.upper().startswith('CANCEL')
    assert len(run.rec.bars) == 5 + 4                     # the run went on to its end
    assert lookups.hits >= 1, 'the look-up fault did not fire'


@pytest.mark.parametrize('venue', ALL)
def test_cancel_answer_lost_while_the_user_stream_is_down(venue):
    """No stream event to settle it: the REST look-up by client id does."""
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: _rest_limit(venue), 7: lambda s: s.cancel(s.order)},
                       max_bars=4, store_kwargs=FAST, broker_kwargs={'rest_poll_interval': 0.0}
                       ).start()
        run.step(1)
        sim.faults.drop_ws('private', seconds=None)
        lost = sim.faults.rest('cancel_order', 'accept_then_reset')
        resent = sim.faults.rest('cancel_order', 'delay', seconds=0.0, times=None)
        run.step(1)
        assert lost.hits == 1
        eventually(lambda: run.rec.statuses()[-1] == 'Canceled' or run.error, 15)
        sim.faults.restore_ws('private')
        run.step(2)
        run.join()
        (order,) = sim_orders(sim, venue)
    assert resent.hits == 0
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Canceled']
    assert order.status.upper().startswith('CANCEL')


@pytest.mark.parametrize('venue', ALL)
def test_cancel_that_never_arrived_is_sent_again_once_it_cannot_land(venue):
    """The connection dropped before the exchange saw the cancel: the look-up
    finds the order open; once the cancel's receive window has passed it can
    no longer land, and only then is one new cancel sent."""
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: _rest_limit(venue), 7: lambda s: s.cancel(s.order)},
                       max_bars=4, store_kwargs=FAST, broker_kwargs={'fill_wait': 0.2}).start()
        run.step(1)
        lost = sim.faults.rest('cancel_order', 'reset')
        resent = sim.faults.rest('cancel_order', 'delay', seconds=0.0, times=None)
        run.step(1)
        assert lost.hits == 1
        eventually(lambda: run.rec.statuses()[-1] == 'Canceled' or run.error, 15)
        run.step(2)
        run.join()
        (order,) = sim_orders(sim, venue)
    assert resent.hits == 1
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Canceled']
    assert order.status.upper().startswith('CANCEL')


@pytest.mark.parametrize('venue', DERIVATIVES + ['binance-spot'])
def test_cancel_of_a_stop_answer_lost(venue):
    """Conditional orders are cancelled elsewhere (Binance futures: the algo
    service); a lost answer is settled the same way."""
    def place(s):
        s.order = s.buy(size=unit(venue), price=round(s.data.close[0] * 1.5, 1),
                        exectype=btl.Order.Stop)
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: place, 7: lambda s: s.cancel(s.order)},
                       max_bars=3, store_kwargs=FAST).start()
        run.step(1)
        lost = sim.faults.rest('cancel_order', 'accept_then_reset')
        lookups = sim.faults.rest('fetch_order', 'reset', times=2)
        resent = sim.faults.rest('cancel_order', 'delay', seconds=0.0, times=None)
        run.step(2)
        run.join()
    assert lost.hits == 1 and lookups.hits >= 1 and resent.hits == 0
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Canceled']


@pytest.mark.parametrize('venue', ['binance-spot', 'bybit-linear'])
def test_cancel_refused_again_and_again_is_given_up_then_cancelled_again(venue):
    """A cancel the exchange keeps refusing (here: rate limited, so surely not
    done) is sent again only after each look-up finds the order open past the
    receive window, ``resolve_attempts`` times in all; then the broker says so
    and the order stays open, for the strategy to cancel again."""
    with venue_sim(venue) as sim:
        script = {6: _rest_limit(venue), 7: lambda s: s.cancel(s.order),
                  9: lambda s: s.cancel(s.order)}
        run = live_run(sim, venue, script=script, max_bars=4, store_kwargs=FAST,
                       broker_kwargs={'fill_wait': 0.2, 'resolve_attempts': 2}).start()
        run.step(1)
        refused = sim.faults.rest('cancel_order', 'rate_limit', retry_after=0, times=None)
        run.step(1)
        eventually(lambda: ('cancel failed',) in [m[:1] for m in run.rec.store_msgs]
                   or run.error, 15)
        sim.faults.clear()
        assert refused.hits == 2
        assert run.rec.statuses() == ['Submitted', 'Accepted']     # still open
        run.step(2)                                               # bar 9 cancels again
        run.join()
        (order,) = sim_orders(sim, venue)
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Canceled']
    assert order.status.upper().startswith('CANCEL')
