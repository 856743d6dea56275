"""A trailed stop's moves are queued to the journal, not waited for; a
trigger's client id is still on disk before its order is sent (rearm.py,
"two kinds of writes").

A real live run against the simulator, journaled on a SQLite file. While
another connection holds the file's write lock (the database "away"), the
bar on which the stop ratchets reaches the strategy at once: the move waits
in the writer's queue (not on disk yet, not dropped) and is committed once
the lock is gone. The stop then triggers, and the order it sends finds its
row, with its client id, already committed.

Prices (the venues' real candles from bar 600, live bar 1 = bar 6 closes
4191.53): the stop (trailamount 30) starts at 4161.53, bar 7 closes 4198.99
(stop 4168.99), bar 8 closes 4260.41 (stop 4230.41), bar 10's low 4221.64
reaches it.
"""
import sqlite3

import pytest
from backtrader import date2num
from sqlalchemy import select

import backtrader_live as btl
from backtrader_live import rearm
from backtrader_live.journal import Journal, attach, open_engine, tables
from helpers import eventually
from test_order_links import RefRecording
from venues import ALL, VENUES, live_run, unit, venue_sim


def _stop_row(url):
    engine = open_engine(url, readonly=True)
    try:
        tab = tables.emulated_orders
        with engine.connect() as conn:
            rows = [r._asdict() for r in conn.execute(
                select(tab).where(tab.c.exectype == 'StopTrail'))]
    finally:
        engine.dispose()
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


class Creates:
    """The store's create_order, wrapped on the instance: what the journal
    holds for the stop at the moment its order goes out."""

    def __init__(self, store, url):
        self.store, self.url, self.seen = store, url, []
        self._create = store.create_order
        store.create_order = self

    def __call__(self, symbol, type_, side, amount, price, params):
        cid = params[self.store.CLIENT_ID_PARAM]
        self.seen.append((cid, _stop_row(self.url)))
        return self._create(symbol, type_, side, amount, price, params)


@pytest.mark.parametrize('venue', ALL)
def test_a_trail_move_does_not_wait_for_the_database_and_a_trigger_still_does(
        tmp_path, venue, monkeypatch):
    # A durable write that cannot commit holds the bar this long (default
    # 5 s): far beyond step()'s wait, so waiting for a move would fail here.
    monkeypatch.setattr(rearm, 'FLUSH_TIMEOUT', 60.0)
    path = tmp_path / 'j.db'
    url = 'sqlite:///%s' % path
    spot = VENUES[venue][4] == 'spot'

    def place(s):
        s.buy(size=unit(venue))
        s.trail = s.sell(size=unit(venue) * (0.999 if spot else 1),
                         exectype=btl.Order.StopTrail, trailamount=30.0)
    journal = Journal.open(url)
    journal.start_run(name='trail-moves', symbols=[VENUES[venue][2]])
    cerebro = btl.Cerebro()
    attach(cerebro, journal, exchange=VENUES[venue][0])
    lock = None
    try:
        with venue_sim(venue) as sim:
            run = live_run(sim, venue, script={6: place}, max_bars=5, strategy=RefRecording,
                           cerebro=cerebro)
            run.start()
            run.step(2)                     # bar 6: the stop is made; bar 7: it moves
            stop = run.rec.strategy.trail
            assert stop.created.price == pytest.approx(4168.99)
            eventually(lambda: (_stop_row(url) or {}).get('price') == stop.created.price, 30)

            lock = sqlite3.connect(str(path), timeout=10)
            lock.execute('BEGIN IMMEDIATE')     # the journal's writer cannot commit now
            run.step(1)                     # bar 8: the stop moves, the bar goes on
            assert stop.created.price == pytest.approx(4230.41)
            row = _stop_row(url)            # (WAL: reading while locked is allowed)
            assert row['price'] == pytest.approx(4168.99), 'not committed: the lock holds'
            assert journal.writer.pending > 0, 'the move waits in the queue'
            lock.rollback()
            lock.close()
            lock = None
            # never dropped: committed once the database is back
            eventually(lambda: _stop_row(url)['price'] == stop.created.price, 60)
            # with the bar it was checked on (bar 8): a restart checks the bars after it
            assert _stop_row(url)['seen_dt'] == pytest.approx(date2num(run.rec.bars[-1][0]))

            creates = Creates(run.rec.strategy.broker.store, url)
            run.step(2)                     # bar 10 reaches the stop: it triggers
            run.join()
    finally:
        if lock is not None:
            lock.rollback()
            lock.close()
        journal.close()
    ((cid, row),) = creates.seen        # the stop's order, the one create after bar 8
    # on disk before the create: its client id, triggered here, at its last level
    assert (row['client_id'], row['role']) == (cid, 'firing'), row
    assert row['price'] == pytest.approx(stop.created.price)
    assert stop.status == stop.Completed


@pytest.mark.parametrize('venue', ALL)
def test_a_trail_move_lost_at_a_kill_is_made_again_from_the_backfill(tmp_path, venue):
    """What a queued move risks: a kill -9 before it is committed leaves the
    row as of the move before (the stop *and* the bar it was checked on).
    The restart checks the bars since from its backfill with upstream's
    ratchet, so the stop stands where the dead process had moved it before
    any new bar."""
    from sqlalchemy import update
    from test_rearm_restart import _session
    url = 'sqlite:///%s' % (tmp_path / 'j.db')
    spot = VENUES[venue][4] == 'spot'

    def place(s):
        s.buy(size=unit(venue))
        s.trail = s.sell(size=unit(venue) * (0.999 if spot else 1),
                         exectype=btl.Order.StopTrail, trailamount=30.0)

    def after_bar_7(s):             # the row a kill after bar 8's move, uncommitted, leaves
        s.p.rec.at_7 = (s.trail.created.price, date2num(s.data.datetime.datetime(0)))

    def last_backfill_bar(s):       # the restart's backfill ends with bar 8
        s.p.rec.rearmed = [(o.created.price, o.alive()) for o in s.broker.rearm.rearmed.values()]
    with venue_sim(venue) as sim:
        first, journal = _session(sim, venue, url, {6: place, 7: after_bar_7}, 3)
        moved_to = first.rec.strategy.trail.created.price       # after bar 8
        price_7, bar_7 = first.rec.at_7
        assert moved_to == pytest.approx(4230.41) and price_7 == pytest.approx(4168.99)
        engine = open_engine(url)
        with engine.begin() as conn:    # as that kill -9 leaves it
            conn.execute(update(tables.emulated_orders).where(
                tables.emulated_orders.c.exectype == 'StopTrail').values(
                status='Accepted', price=price_7, seen_dt=bar_7))
            conn.execute(update(tables.runs).values(status='running'))
        engine.dispose()
        second, _ = _session(sim, venue, url, {5: last_backfill_bar}, 1, resume=journal.run_id)
    assert second.rec.rearmed == [(pytest.approx(moved_to), True)]
