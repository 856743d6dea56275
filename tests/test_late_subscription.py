"""A bar that closes after the history was read but before the market
stream's subscription is in place is delivered at once (over REST), not a
whole bar late when the next one reveals the hole.

The feed subscribes before it backfills, but the subscription goes out only
when the stream's connection opens: a connect slower than the backfill (a
loaded machine, a slow network, the exchange refusing the first handshakes)
leaves a window in which a bar closes unseen. In step mode nothing else comes
until the test steps again: this is how
test_rest_fallback_when_the_user_stream_cannot_connect hung under load (its
first step's bar closed before the subscription).
"""
import datetime
import threading

import pytest

from backtrader_live.store import Store
from helpers import eventually
from venues import ALL, live_run, refused_user_stream_run, sim_orders, venue_sim

HOUR = datetime.timedelta(hours=1)
BACKFILL = 5


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _sim(venue):
    # The market clock starts hours behind the wall clock: the steps keep it
    # there. ccxt caps Binance COIN-M kline requests at its own (wall) clock,
    # so a market clock stepped ahead of it would hide the bar the gap fill
    # asks for, and the forming candle the fill drops (docs/simulator.md).
    return venue_sim(venue, start=_utcnow() - 3 * HOUR)


def _hourly_and_once(run):
    times = [b[0] for b in run.rec.bars]
    assert all(b - a == HOUR for a, b in zip(times, times[1:])), times


def _store(run):
    return run.rec.strategy.broker.store


def _stop(run):
    """A run that failed its check still ends, threads joined."""
    for data in run.cerebro.datas:
        data.request_stop()
    run.join(30)


@pytest.mark.parametrize('venue', ALL)
def test_a_bar_closed_while_the_first_subscription_is_on_its_way_is_delivered(
        venue, monkeypatch):
    opening, go_on = threading.Event(), threading.Event()
    on_open = Store._on_market_open

    def slow_open(store, stream):
        # the connection is open; its subscription waits for the test
        opening.set()
        go_on.wait(10)
        on_open(store, stream)
    monkeypatch.setattr(Store, '_on_market_open', slow_open)
    with _sim(venue) as sim:
        run = live_run(sim, venue, max_bars=2, backfill_bars=BACKFILL)
        try:
            run.start(wait_subscribed=False)        # the history is in
            eventually(opening.is_set, 10)
            assert not _store(run).hub.market_opened, 'subscribed already: no window'
            sim.step()      # bar 6 closes with no subscriber
        finally:
            go_on.set()
        _the_missed_bar_comes(run, 'the subscription')


def _the_missed_bar_comes(run, what):
    """Bar 6, closed before ``what``, reaches the strategy (over REST), then
    bar 7 from the stream: each once, an hour apart."""
    try:
        eventually(lambda: len(run.rec.bars) > BACKFILL or run.error, 10,
                   message='the bar that closed before %s never came' % what)
        run.step(1)         # bar 7, from the stream
    finally:
        _stop(run)
    assert len(run.rec.bars) == BACKFILL + 2
    _hourly_and_once(run)


@pytest.mark.parametrize('venue', ALL)
def test_a_bar_closed_while_the_first_connection_was_refused_is_delivered(venue):
    with _sim(venue) as sim:
        sim.faults.drop_ws('public', seconds=None)
        run = live_run(sim, venue, max_bars=2, backfill_bars=BACKFILL)
        try:
            run.start(wait_subscribed=False)        # the history is in over REST
            eventually(lambda: sim.faults.counts['ws refused'] > 0, 10)
            sim.step()      # bar 6 closes with no market stream
        finally:
            sim.faults.restore_ws('public')
        _the_missed_bar_comes(run, 'the first connection')


@pytest.mark.parametrize('venue', ALL)
def test_a_fill_made_before_the_first_user_connection_is_reconciled_as_it_connects(venue):
    """The account stream is refused from the start; the order fills while
    nothing polls for it (the poll is hourly, the bar's own look-up off).
    The first connection that gets through may have missed anything since
    the broker started, as a reconnect may: the broker asks the exchange."""
    with venue_sim(venue) as sim:
        run = refused_user_stream_run(sim, venue, 3, rest_poll_interval=3600.0)
        try:
            run.step(1)     # bar 6: the limit rests
            run.step(1)     # bar 7 fills it; nothing tells the broker
            (order,) = sim_orders(sim, venue)
            assert order.status == 'FILLED'
            assert run.rec.statuses() == ['Submitted', 'Accepted']
            sim.faults.restore_ws('private')
            eventually(lambda: _store(run).user_stream_live, 15)
            eventually(lambda: 'Completed' in run.rec.statuses() or run.error, 10,
                       message='the fill made before the first connection never came')
            run.step(1)
        finally:
            _stop(run)
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Completed']
    assert run.rec.positions[-1] > 0
