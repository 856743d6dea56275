"""The user stream carries the account only once the exchange says so.

Binance spot (the WS-API's ``userDataStream.subscribe.signature``) and Bybit
(the private ``subscribe``) send the account's events to a connection only
after they have acted on its subscription, and answer it. An order sent
between the connect and that answer has its fills and status changes sent to
no one. So the stream is LIVE to the broker from the answer, not from the
connect: start-up waits for it (bounded), the broker polls REST until it
comes, and asks about its live orders once it has come (stream_hub.py,
live.py). The simulator's ``hold_user_subscriptions`` fault holds that
window open. Binance USD-M and COIN-M read a listenKey stream, which carries
the account from its connect: nothing to wait for there.
"""
import logging

import pytest

import backtrader_live as btl
from backtrader_live import live
from backtrader_live.events import SUBSCRIBED
from backtrader_live.stores import BinanceStore, BybitStore
from helpers import KEY, SECRET, eventually
from venues import BINANCE, BYBIT, VENUES, live_run, sim_orders, unit, venue_sim

SUBSCRIBING = ['binance-spot'] + BYBIT          # the exchange answers the subscription
LISTEN_KEY = [v for v in BINANCE if v != 'binance-spot']


# the simulator's real candles: script bar 6 closes at 4191.53, bar 7's low is
# 4174.97 (test_bar_fills.py)
LIMIT = 4180.0


def _buy(venue, price=None):
    """A market buy, or a limit buy at ``price``."""
    size = unit(venue)
    kind = {} if price is None else {'exectype': btl.Order.Limit, 'price': price}

    def script(s):
        s.order = s.buy(size=size, **kind)
    return script


def _bought(run):
    order = run.rec.strategy.order
    assert order.status == btl.Order.Completed, run.rec.orders
    assert run.rec.statuses().count('Completed') == 1, run.rec.orders   # told once
    assert run.rec.strategy.position.size == pytest.approx(order.executed.size)
    return order


@pytest.mark.parametrize('venue', SUBSCRIBING)
def test_an_order_filled_before_a_resubscription_is_confirmed_settles(venue):
    """The user stream reconnects and its subscription is held: a limit buy
    sent then, and filled in the next bar, gets no stream events. The stream
    is not LIVE until the answer; when it comes, the broker asks about its
    orders and the fill lands, once. (Before: LIVE at the connect, so no REST
    poll, and no look-up with bar_fill_wait=0: the order never settled.)"""
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: _buy(venue, LIMIT)}, max_bars=3, bar_fill_wait=0,
                       broker_kwargs={'rest_poll_interval': 3600.0}).start()
        store = run.rec.strategy.broker.store
        assert store.user_stream_live
        sim.faults.hold_user_subscriptions()
        assert sim.faults.drop_ws('private', seconds=0) > 0
        eventually(lambda: sim.faults.counts['user subscription held'] > 0, 10,
                   message='the fault never fired: no resubscription was held')
        assert not store.user_stream_live, 'connected, but the exchange has not answered'
        for bar in (6, 7):      # 6: the limit buy rests; 7: its low fills it
            seen = len(run.rec.bars)
            sim.step()
            eventually(lambda: len(run.rec.bars) > seen, 10)
        eventually(lambda: [o for o in sim_orders(sim, venue) if o.status.upper() == 'FILLED'],
                   10, message='the exchange did not fill the limit buy in bar 7')
        sim.faults.release_user_subscriptions()
        eventually(lambda: store.user_stream_live, 10)
        order = run.rec.strategy.order
        eventually(lambda: order.status == btl.Order.Completed, 10,
                   message='the fill made before the answer never reached the broker')
        run.step(1)
        run.join()
        _bought(run)


@pytest.mark.parametrize('venue', SUBSCRIBING)
def test_start_up_waits_for_the_subscription_then_polls_rest(venue, monkeypatch, caplog):
    """No answer within the start-up wait: the run starts, says so, and
    follows its orders over REST until the answer comes."""
    monkeypatch.setattr(live, 'USER_STREAM_WAIT', 0.5)     # instead of 10 s
    with venue_sim(venue) as sim:
        sim.faults.hold_user_subscriptions()
        run = live_run(sim, venue, script={6: _buy(venue)}, max_bars=2, bar_fill_wait=0,
                       broker_kwargs={'rest_poll_interval': 0.0})
        with caplog.at_level(logging.WARNING, logger='backtrader_live.live'):
            run.start(wait_subscribed=False)
            sim.wait_subscribed(VENUES[venue][3], timeout=10)
        assert sim.faults.counts['user subscription held'] > 0, 'the fault never fired'
        assert 'does not carry the account yet' in caplog.text
        store = run.rec.strategy.broker.store
        assert not store.user_stream_live
        run.step(1)         # bar 6: bought, its fill found by REST
        _bought(run)
        sim.faults.release_user_subscriptions()
        eventually(lambda: store.user_stream_live, 10)
        run.step(1)
        run.join()
        _bought(run)


@pytest.mark.parametrize('venue', LISTEN_KEY)
def test_a_listen_key_stream_carries_the_account_from_its_connect(venue):
    with venue_sim(venue) as sim:
        sim.faults.hold_user_subscriptions()
        run = live_run(sim, venue, script={6: _buy(venue)}, max_bars=2, bar_fill_wait=0,
                       broker_kwargs={'rest_poll_interval': 3600.0}).start()
        assert run.rec.strategy.broker.store.user_stream_live
        run.step(2)
        run.join()
        _bought(run)
        assert sim.faults.counts['user subscription held'] == 0     # none to hold


@pytest.mark.parametrize('store_cls,kwargs,answer', [
    (BinanceStore, {'market_type': 'spot'},
     {'id': 'sub-3', 'status': 200, 'result': {'subscriptionId': 0}}),
    (BybitStore, {'market_type': 'spot'},
     {'op': 'subscribe', 'req_id': 'private', 'success': True, 'ret_msg': '', 'conn_id': 'c'}),
])
def test_the_subscription_answer_is_recognised_and_a_stray_one_changes_nothing(
        store_cls, kwargs, answer, caplog):
    store = store_cls(apikey=KEY, secret=SECRET, testnet=True, **kwargs)
    assert store.parse_user_message(answer) == (SUBSCRIBED,)
    seen = []
    hub = store.hub
    hub.user_listeners.append(seen.append)
    with caplog.at_level(logging.DEBUG, logger='backtrader_live.stream_hub'):
        hub.on_user_message(answer)         # no subscription awaited: a stray answer
    assert seen == [] and 'none awaited' in caplog.text
    hub.user_confirming = True              # as after the hook's True
    hub.on_user_state('live', True)         # held for the answer
    assert seen == []
    hub.on_user_message(answer)
    assert seen == [('state', 'live', True)]
    assert hub.user_settled.is_set()
