"""A live run against the simulator, journaled: orders with each status
change, fills with the exchange's numbers, closed trades, equity per bar,
positions, and stream state, written while the strategy trades."""
import pytest
from sqlalchemy import select

import backtrader_live as btl
from backtrader_live.journal import Journal, attach, tables
from journalkit import db_url  # noqa: F401  (fixture)
from venues import ALL, live_run, unit, venue_sim


def rows(engine, table, order_by='id'):
    tab = tables.metadata.tables[table]
    with engine.connect() as conn:
        return [r._asdict() for r in conn.execute(select(tab).order_by(tab.c[order_by]))]


def journaled_run(url, venue, paper=False):
    size = unit(venue)
    # bars 1-5 are the backfill: trade on the live bars 6 and 8
    script = {6: lambda s: s.buy(size=size), 8: lambda s: s.close()}
    journal = Journal.open(url)
    run_id = journal.start_run(venue, ['BTC'], '1h', paper)
    cerebro = btl.Cerebro()
    attach(cerebro, journal, exchange=venue)
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script=script, max_bars=4, cerebro=cerebro,
                       paper_trading=paper).start()
        run.step(4)
        run.join()
    journal.close()
    return journal.engine, run_id, run


@pytest.mark.parametrize('venue', ALL)
def test_a_live_run_is_journaled(tmp_path, venue):
    engine, run_id, run = journaled_run('sqlite:///%s' % (tmp_path / 'j.db'), venue)
    check_journal(engine, run_id, run, venue)


def test_a_live_run_is_journaled_in_postgres(db_url):  # noqa: F811
    engine, run_id, run = journaled_run(db_url, 'binance-spot')
    check_journal(engine, run_id, run, 'binance-spot')


def test_a_paper_run_is_journaled(tmp_path):
    engine, run_id, run = journaled_run('sqlite:///%s' % (tmp_path / 'j.db'), 'binance-spot',
                                        paper=True)
    check_journal(engine, run_id, run, 'binance-spot', paper=True)


def check_journal(engine, run_id, run, venue, paper=False):
    engine = engine.engine
    (run_row,) = rows(engine, 'runs')
    assert run_row['status'] == 'stopped' and run_row['ended_at'] is not None
    orders = rows(engine, 'orders')
    assert [(o['side'], o['ref'] is not None) for o in orders] == [('buy', True),
                                                                  ('sell', True)]
    assert all(o['run_id'] == run_id for o in orders)
    if not paper:      # the exchange's ids of real orders
        assert all(o['client_id'] and o['exchange_id'] for o in orders)
    events = rows(engine, 'order_events')
    statuses = [e['status'] for e in events]
    assert statuses == run.rec.statuses(), 'each status change of each order, in order'
    fills = rows(engine, 'fills')
    executed = [o for o in run.rec.orders if o[0] == 'Completed']
    assert round(sum(f['size'] for f in fills), 9) == 0.0      # bought, then closed
    assert sum(abs(f['size']) for f in fills) == pytest.approx(
        sum(abs(o[1]) for o in executed))
    assert len({f['trade_id'] for f in fills}) == len(fills)
    assert sum(f['comm'] for f in fills) == pytest.approx(sum(o[3] for o in executed))
    (trade,) = rows(engine, 'trades')
    assert (trade['pnl'], trade['pnlcomm']) == pytest.approx(run.rec.trades[0])
    equity = rows(engine, 'equity')
    assert len(equity) == len(run.rec.bars)
    assert [e['at'] for e in equity] == [b[0] for b in run.rec.bars]
    positions = [s for s in rows(engine, 'snapshots') if s['kind'] == 'position']
    assert positions[-1]['size'] == 0.0 and any(s['size'] for s in positions)
    streams = rows(engine, 'stream_events')
    assert {'LIVE'} <= {s['status'] for s in streams if s['source'] == 'data'}
