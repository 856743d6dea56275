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


def test_a_usdm_position_below_the_minimum_notional_can_still_be_closed():
    """Binance exempts reduce-only orders from MIN_NOTIONAL (-4164 "... unless you
    choose reduce only"): close() of 0.001 BTC (~4 USDT < 5) goes out reduce-only
    and fills; the same size opening a position is refused before sending."""
    venue = 'binance-usdm'
    script = {6: lambda s: s.buy(size=0.003), 7: lambda s: setattr(s, 'part', s.sell(size=0.002)),
              8: lambda s: setattr(s, 'closing', s.close()),
              9: lambda s: setattr(s, 'opening', s.buy(size=0.001))}
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script=script, max_bars=5).start()
        run.step(5)
        run.join()
        held = sim_position(sim, venue)
    strategy = run.rec.strategy
    assert strategy.part.status == strategy.part.Completed      # 0.001 BTC left
    assert strategy.closing.status == strategy.closing.Completed, \
        strategy.closing.info.get('reject_reason')
    assert strategy.closing.executed.size == -0.001
    assert strategy.closing.info.get('sent_reduce_only') == 'it closes the whole position'
    assert held == 0 and strategy.position.size == 0
    assert strategy.opening.status == strategy.opening.Rejected
    assert 'below the minimum 5' in strategy.opening.info['reject_reason']


def test_reduce_only_and_the_kill_switch_share_one_tolerance():
    """One definition of "reduces exposure" (risk.reduces_exposure): at its
    boundary (1e-9 of the position) the order the kill switch lets through
    as reducing is the one sent reduce-only, and just past it neither."""
    import backtrader
    from backtrader_live import risk
    venue = 'binance-usdm'
    u = unit(venue)

    def probe(s):
        s.broker.kill_switch.trip('manual', 'test')
        pos = s.position.size
        s.verdicts = []
        for factor in (1 + 5e-10, 1 + 2e-9):
            order = backtrader.SellOrder(owner=s, data=s.data, size=pos * factor, price=None,
                                         exectype=backtrader.Order.Market, simulated=True)
            s.verdicts.append((not risk.increases_exposure(s.broker, order),
                               s.broker._why_reduce_only(order)))
    with venue_sim(venue) as sim:      # paper: the decision is the same, nothing is sent
        run = live_run(sim, venue, paper_trading=True, max_bars=3,
                       script={6: lambda s: s.buy(size=u), 8: probe}).start()
        run.step(3)
        run.join()
    within, beyond = run.rec.strategy.verdicts
    assert within == (True, 'the kill switch lets through only orders that reduce')
    assert beyond == (False, None)
