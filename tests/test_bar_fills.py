"""A fill made inside a bar reaches the strategy with that bar, as in a
backtest, whichever stream is faster (backtrader_live/barfills.py).

A resting order filled inside bar X is reported on the account stream, bar
X's close on the market stream: two sockets, two threads. The simulator's
``hold_account_events`` fault forces the bad ordering (the close first, the
fill held back). Before the strategy sees bar X the broker must have the
fill, waiting (bounded) for the account stream, else asking the exchange by
REST; a bracket's children then go out before bar X + 1, as upstream
activates them.

Prices (the simulator's real candles): script bar 6 closes at 4191.53, bar 7
trades 4174.97-4206.77 (its low reaches the parent's limit 4180), bar 8 up to
4307.54; the stop 4100 and the target 4400 stay untouched through bar 8.
"""
import logging
import math

import backtrader as bt
import pytest

import backtrader_live as btl
from backtrader_live.barfills import reached
from backtrader_live.broker import BrokerBase
from helpers import eventually
from livekit import Scripted
from venues import ALL, VENUES, live_run, sim_orders, unit, venue_sim

PARENT, STOP, TARGET = 4180.0, 4100.0, 4400.0


class Probe(Scripted):
    """Records, at every next(), the position and where the bracket's
    children are: 'sent' (on the exchange: a client order id), 'local'
    (watched by this process: a spot bracket's stop) or 'held'."""

    def next(self):
        bracket = getattr(self, 'bracket', None)
        if bracket:
            local = self.broker.emulated.local()
            where = ['sent' if o.info.get('client_id') else
                     'local' if any(o is w for w in local) else 'held' for o in bracket[1:]]
            self.p.rec.__dict__.setdefault('seen', []).append(
                (len(self.p.rec.bars) + 1, self.position.size, where))
        super().next()


def place(s):
    s.bracket = s.buy_bracket(size=s.unit, price=PARENT, stopprice=STOP, limitprice=TARGET)


def _start(sim, venue, **kwargs):
    u = unit(venue)

    def script6(s):
        s.unit = u
        place(s)
    run = live_run(sim, venue, script={6: script6}, max_bars=3, strategy=Probe, **kwargs)
    run.start()
    run.step(1)         # bar 6 closes: the bracket goes out, the parent rests
    parent = run.rec.strategy.bracket[0]
    assert parent.status == btl.Order.Accepted and not parent.executed.size
    return run


def _seen_at(run, bar):
    return next(s for s in run.rec.seen if s[0] == bar)


def _children_where(venue):
    # spot locks the coin a resting sell holds: the stop is watched locally
    return ['local', 'sent'] if VENUES[venue][4] == 'spot' else ['sent', 'sent']


def _filled(run):
    return abs(run.rec.strategy.bracket[0].executed.size)


def _fills_once(run):
    """Each order's fills notified once: the stream's copy of a fill the
    REST look-up applied first is recognised (by trade id) and dropped."""
    parent = run.rec.strategy.bracket[0]
    statuses = [o[0] for o in run.rec.orders]
    assert statuses.count('Completed') == 1, statuses      # the parent only
    assert parent.status == btl.Order.Completed


@pytest.mark.parametrize('venue', ALL)
def test_fill_held_on_the_account_stream_shows_with_its_bar(venue):
    """The account stream lags the bar's close: the broker holds the bar
    (bounded) until the stream brings the fill, so next() of bar 7 sees the
    position and both children are out before bar 8 forms."""
    with venue_sim(venue) as sim:
        run = _start(sim, venue, bar_fill_wait=60.0)     # the stream comes well within it
        broker = run.rec.strategy.broker
        seen = len(run.rec.bars)
        sim.faults.hold_account_events()
        sim.step()          # bar 7: the parent's limit fills inside it, the fill is held
        assert sim.faults.counts['account event held'] > 0, 'the fault never fired'
        # the bar waits in the broker for the fill (before the fix: the
        # strategy sees bar 7 right away, without it)
        eventually(lambda: getattr(getattr(broker, 'bar_fills', None), 'waiting', ())
                   or len(run.rec.bars) > seen or run.error, 10)
        assert len(run.rec.bars) == seen, 'bar 7 reached the strategy without its fill'
        assert sim.faults.release_account_events() > 0
        eventually(lambda: len(run.rec.bars) > seen or run.error, 10)
        eventually(run._settled, 10)
        assert broker.bar_fills.lookups == 0, 'the stream came in time: no REST look-up'
        bar, position, where = _seen_at(run, 7)
        assert position == pytest.approx(_filled(run)) and position > 0, run.rec.seen
        assert where == _children_where(venue), run.rec.seen
        # on the exchange before bar 8 forms: the target (and the stop off spot)
        ours = [o for o in sim_orders(sim, venue) if o.side.upper() == 'SELL']
        assert len(ours) == (1 if VENUES[venue][4] == 'spot' else 2), ours
        run.step(1)         # bar 8 reaches no working order: it waits for nothing
        run.join()
        _fills_once(run)
        assert broker.bar_fills.held_bars == 1


@pytest.mark.parametrize('venue', ALL)
def test_fill_never_streamed_is_asked_by_rest_before_the_bar(venue):
    """The account stream says nothing within the first half of the bound:
    the broker asks the exchange once by REST (client order id) and applies
    its answer before the strategy sees bar 7. The stream's copy, released
    later, adds nothing."""
    with venue_sim(venue) as sim:
        run = _start(sim, venue, bar_fill_wait=4.0)
        broker = run.rec.strategy.broker
        sim.faults.hold_account_events()
        run.step(1)         # bar 7, its fill withheld from the stream
        assert sim.faults.counts['account event held'] > 0, 'the fault never fired'
        assert broker.bar_fills.lookups == 1
        bar, position, where = _seen_at(run, 7)
        assert position == pytest.approx(_filled(run)) and position > 0, run.rec.seen
        assert where == _children_where(venue), run.rec.seen
        assert sim.faults.release_account_events() > 0
        run.step(1)
        run.join()
        _fills_once(run)
        assert run.rec.seen[-1][1] == pytest.approx(position)
        assert broker.bar_fills.lookups == 1 and broker.bar_fills.held_bars == 1


@pytest.mark.parametrize('venue', ALL)
def test_rest_lookup_failing_never_ends_the_run(venue, caplog):
    """Stream silent and the REST look-up failing (503 on every order
    query): the bar goes to the strategy after the bound without the fill,
    a warning says why, and the fill is applied when the stream brings it."""
    with venue_sim(venue) as sim:
        run = _start(sim, venue, bar_fill_wait=1.0, rest_retries=0)
        broker = run.rec.strategy.broker
        sim.faults.hold_account_events()
        rule = sim.faults.rest('fetch_order', 'server_error', status=503, times=None)
        with caplog.at_level(logging.WARNING, logger='backtrader_live'):
            run.step(1)     # bar 7
            eventually(lambda: rule.hits > 0, 10)
        assert sim.faults.counts['account event held'] > 0, 'the fault never fired'
        assert broker.bar_fills.lookups == 1
        assert _seen_at(run, 7)[1] == 0.0, run.rec.seen      # no fill known yet
        assert any('bar fill' in r.getMessage() for r in caplog.records), caplog.text
        sim.faults.clear()                                   # the stream's fill comes now
        eventually(lambda: run.rec.strategy.bracket[0].status == btl.Order.Completed
                   or run.error, 10)
        run.step(1)
        run.join()
        assert run.error is None
        _fills_once(run)
        bar, position, where = _seen_at(run, 8)
        assert position == pytest.approx(_filled(run)) and position > 0, run.rec.seen
        assert where == _children_where(venue), run.rec.seen


@pytest.mark.parametrize('venue', ALL)
def test_rest_lookup_answering_late_is_applied_when_it_comes(venue, caplog):
    """Stream silent and the look-up's answer held 3 s by the exchange, past
    bar_fill_wait (1 s): bar 7 goes on without the fill (the bar is never
    held past the bound), a warning says so, and the late answer is applied
    when it lands, before the stream says anything."""
    with venue_sim(venue) as sim:
        run = _start(sim, venue, bar_fill_wait=1.0)
        broker = run.rec.strategy.broker
        parent = run.rec.strategy.bracket[0]
        sim.faults.hold_account_events()
        rule = sim.faults.rest('fetch_order', 'delay', seconds=3.0)
        with caplog.at_level(logging.WARNING, logger='backtrader_live'):
            run.step(1)     # bar 7
        assert rule.hits == 1 and sim.faults.counts['account event held'] > 0
        assert _seen_at(run, 7)[1] == 0.0, run.rec.seen     # went on without the answer
        assert any('bar fill: no word' in r.getMessage() for r in caplog.records), caplog.text
        eventually(lambda: parent.status == btl.Order.Completed or run.error, 15)
        assert sim.faults.account_events_held(), 'the fill came from the look-up, not the stream'
        assert sim.faults.release_account_events() > 0
        run.step(1)
        run.join()
        _fills_once(run)
        bar, position, where = _seen_at(run, 8)
        assert position == pytest.approx(_filled(run)) and position > 0, run.rec.seen
        assert where == _children_where(venue), run.rec.seen


@pytest.mark.parametrize('venue', ALL)
def test_user_stream_down_the_bar_does_not_wait_for_it(venue):
    """No user stream (dropped, reconnects refused): nothing can come on it,
    so the bar does not wait for it (bar_fill_wait=60 would hold it 30 s,
    past run.step's 10 s); the REST look-up (or the broker's polling while
    the stream is down, whichever asks first) brings the fill in before the
    strategy sees bar 7."""
    with venue_sim(venue) as sim:
        run = _start(sim, venue, bar_fill_wait=60.0)
        broker = run.rec.strategy.broker
        assert sim.faults.drop_ws('private', seconds=None) > 0
        eventually(lambda: not broker.store.user_stream_live, 10)
        run.step(1)     # bar 7
        assert broker.bar_fills.lookups <= 1
        bar, position, where = _seen_at(run, 7)
        assert position == pytest.approx(_filled(run)) and position > 0, run.rec.seen
        assert where == _children_where(venue), run.rec.seen
        sim.faults.restore_ws('private')
        run.step(1)
        run.join()
        _fills_once(run)

def _order(side, exectype, price, plimit=None, **info):
    make = bt.BuyOrder if side == 'buy' else bt.SellOrder
    order = make(owner=None, data=bt.feeds.DataBase(), size=1, price=price, pricelimit=plimit,
                 exectype=exectype, simulated=True)
    order.addinfo(**info)
    return order


# (side, type, price, limit, info, bar high, bar low, reached?): upstream's rules
REACH = [
    ('buy', bt.Order.Limit, 100, None, {}, 105, 100, True),      # the low touches it
    ('buy', bt.Order.Limit, 100, None, {}, 105, 100.5, False),
    ('sell', bt.Order.Limit, 100, None, {}, 100, 95, True),
    ('sell', bt.Order.Limit, 100, None, {}, 99.9, 95, False),
    ('buy', bt.Order.Stop, 100, None, {}, 100, 95, True),
    ('buy', bt.Order.Stop, 100, None, {}, 99.9, 95, False),
    ('sell', bt.Order.Stop, 100, None, {}, 105, 100, True),
    ('sell', bt.Order.Stop, 100, None, {}, 105, 100.1, False),
    ('buy', bt.Order.StopLimit, 100, 101, {}, 102, 100.5, True),
    ('buy', bt.Order.StopLimit, 100, 99, {}, 102, 99.5, False),   # triggered, limit not
    ('sell', bt.Order.StopLimit, 100, 99, {}, 99.5, 98, True),
    ('buy', bt.Order.Market, None, None, {}, 1, 1, True),
    # a conditional take-profit triggers as the price comes to it
    ('sell', bt.Order.Market, None, None, {'takeProfitPrice': 110}, 110, 100, True),
    ('sell', bt.Order.Market, None, None, {'takeProfitPrice': 110}, 109, 100, False),
    # triggered locally: went out as a market order, or as a limit at the trailed limit
    ('sell', bt.Order.StopTrail, 100, None, {'triggered_locally': True}, 1, 1, True),
]


@pytest.mark.parametrize('side,ex,price,plimit,info,high,low,hit', REACH)
def test_which_orders_a_bar_reached(side, ex, price, plimit, info, high, low, hit):
    assert reached(_order(side, ex, price, plimit, **info), high, low) is hit


@pytest.mark.parametrize('value', [-1, 'soon', math.nan, math.inf, True])
def test_a_bad_bar_fill_wait_is_refused_naming_the_accepted_values(value):
    with pytest.raises(btl.ConfigError, match=r'bar_fill_wait must be a number of seconds '
                       r'>= 0 .*, or None or 0 \(off\), got'):
        BrokerBase(bar_fill_wait=value)


@pytest.mark.parametrize('value', [None, 0, 0.5, 2])
def test_bar_fill_wait_accepts_seconds_or_none(value):
    assert BrokerBase(bar_fill_wait=value).p.bar_fill_wait == value
