"""Which futures orders are sent reduce-only (issue 11, item 10b): the whole
position the other way (close()), orders the kill switch lets through, and
what the strategy marks; a plain partial reduction is sent as asked."""
import pytest

from helpers import eventually
from venues import DERIVATIVES, live_run, sim_orders, sim_position, unit, venue_sim


def _flatten_behind_the_strategys_back(u):
    """Someone (another program, the web UI) closes the position on the
    exchange; the strategy has not heard of it yet when it calls close()."""
    def act(s):
        store = s.broker.store
        store.create_order(s.data.p.dataname, 'market', 'sell', 2 * u, None, {})
        s.closing = s.close(**s.close_kwargs)
    return act


@pytest.mark.parametrize('opt_out', [False, True])
@pytest.mark.parametrize('venue', DERIVATIVES)
def test_close_after_the_position_moved(venue, opt_out):
    u = unit(venue)

    def setup(s):
        s.close_kwargs = {'reduceOnly': False} if opt_out else {}
        s.buy(size=2 * u)
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: setup, 7: _flatten_behind_the_strategys_back(u)},
                       max_bars=3).start()
        run.step(3)
        run.join()
        held = sim_position(sim, venue)
        ours = [o for o in sim_orders(sim, venue) if o.client_id.startswith('btl')]
    closing = run.rec.strategy.closing
    if opt_out:
        # asked for a plain order: the exchange sells 2 more, the strategy is short
        assert closing.status == closing.Completed and not ours[-1].reduce_only
        assert held == pytest.approx(-2 * u)
    else:
        assert closing.status == closing.Rejected
        reason = closing.info['reject_reason']
        assert ('-2022' in reason or '110017' in reason) and \
            'sent reduce-only: it closes the whole position' in reason, reason
        assert held == 0                      # flat, never short by accident
    eventually(lambda: run.rec.strategy.position.size == pytest.approx(held), 1)


@pytest.mark.parametrize('venue', DERIVATIVES)
def test_partial_reduction_is_sent_as_asked_and_kill_switch_orders_reduce_only(venue):
    u = unit(venue)

    def trip(s):
        s.broker.kill_switch.trip('manual', 'test')
        s.sell(size=u)
    script = {6: lambda s: s.buy(size=4 * u), 7: lambda s: s.sell(size=u),
              8: trip, 9: lambda s: s.close()}
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script=script, max_bars=4).start()
        run.step(4)
        run.join()
        orders = sim_orders(sim, venue)
        held = sim_position(sim, venue)
    assert [o.reduce_only for o in orders] == [False, False, True, True]
    assert all(o.status == 'FILLED' for o in orders) and held == 0
