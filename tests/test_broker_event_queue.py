"""The broker's event queue is bounded and never drops an order or fill
event: a full queue makes the stream thread wait (issue 11, item 10a)."""
import logging
import threading

import pytest

import backtrader_live as btl
from backtrader_live.events import EventQueue
from helpers import eventually
from venues import VENUES, live_run, sim_orders, unit, venue_sim


def test_a_full_queue_blocks_the_producer_and_loses_nothing(caplog):
    woken = []
    events = EventQueue(2, wake=lambda: woken.append(1))
    producer = threading.Thread(target=lambda: [events.put(i) for i in range(5)],
                                name='test-producer', daemon=True)
    with caplog.at_level(logging.WARNING, logger='backtrader_live.events'):
        producer.start()
        eventually(lambda: events.waits == 1 and woken, 5)
        assert producer.is_alive() and events.qsize() == 2     # waiting, not dropping
        got = []
        while len(got) < 5:
            try:
                got.append(events.get_nowait())
            except events.empty_error:
                eventually(lambda: events.qsize() or not producer.is_alive(), 5)
        producer.join(5)
    assert got == [0, 1, 2, 3, 4]
    assert 'broker event queue full (2 events)' in caplog.text


def test_a_full_queue_gives_up_only_when_the_run_stops(caplog):
    stopping = threading.Event()
    events = EventQueue(1, stopping=stopping.is_set)
    events.put('first')
    producer = threading.Thread(target=events.put, args=('second',), name='test-producer',
                                daemon=True)
    producer.start()
    eventually(lambda: events.waits == 1, 5)
    stopping.set()
    producer.join(5)
    assert not producer.is_alive() and events.get_nowait() == 'first'
    assert "'second' not applied" in caplog.text


@pytest.mark.parametrize('size', [0, -1, 2.5, None, True])
def test_queue_size_must_be_a_whole_number(size):
    with pytest.raises(btl.ConfigError, match='event_queue_size must be a whole number >= 1'):
        btl.brokers.BinanceBroker(event_queue_size=size)


@pytest.mark.parametrize('venue', ['binance-spot', 'binance-usdm', 'bybit-linear'])
def test_live_fills_through_a_queue_of_one(venue):
    """Many partial fills through a queue that holds one event: all arrive."""
    u = unit(venue)
    thin = {'binance-spot': {'depth_qty': 2 * u}, 'binance-usdm': {'futures_depth_qty': 2 * u},
            'bybit-linear': {'contract_depth_qty': 2 * u}}[venue]
    with venue_sim(venue, **thin) as sim:
        run = live_run(sim, venue, script={6: lambda s: s.buy(size=5 * u)}, max_bars=2,
                       broker_kwargs={'event_queue_size': 1}).start()
        run.step(2)
        run.join()
        (order,) = sim_orders(sim, venue)
        fills = len(sim.trades(market=order_market(venue)))
    statuses = run.rec.statuses()
    assert statuses[-1] == 'Completed' and statuses.count('Partial') == fills - 1 >= 2
    assert run.rec.orders[-1][1] == pytest.approx(5 * u, rel=0.01)


def order_market(venue):
    return VENUES[venue][4]
