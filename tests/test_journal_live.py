"""A live run against the simulator, journaled: orders with each status
change, fills with the exchange's numbers, closed trades, equity per bar,
positions, and stream state, written while the strategy trades."""
import pytest
from sqlalchemy import select

import backtrader_live as btl
from backtrader_live.journal import Journal, attach, open_engine, tables
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
    if not paper:      # each fill by the exchange's own trade id (fills.py records it)
        assert not [f for f in fills if '#' in f['trade_id']], fills
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


@pytest.mark.parametrize('venue', ALL)
def test_reconcile_records_what_the_journal_missed_once(tmp_path, venue):
    """In-process, on each venue: a journaled run leaves a limit order resting
    and its row 'running' (as a killed process would); the order fills while
    no bot runs. Reconciling resolves it by client id and records its fill
    with the exchange's trade id; an order the exchange never saw is marked
    Rejected; a second reconcile finds nothing more."""
    import datetime
    from sqlalchemy import update
    from backtrader_live.journal.recovery import reconcile, unfinished_run
    from helpers import KEY, SECRET
    from venues import STORES, VENUES, exchange, market_type, sim_orders
    name, symbol, market = exchange(venue), VENUES[venue][2], VENUES[venue][4]
    size = unit(venue)
    url = 'sqlite:///%s' % (tmp_path / 'j.db')
    journal = Journal.open(url)
    run_id = journal.start_run(name, [symbol], '1h', False, name='bot')
    cerebro = btl.Cerebro()
    attach(cerebro, journal, exchange=name)

    def rest(s):
        s.buy(size=size, price=round(s.data.close[0] * 0.999, 1), exectype=btl.Order.Limit)
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: rest}, max_bars=1, cerebro=cerebro)
        run.start().step(1)
        run.join()
        journal.record('orders', ref=99, client_id='btlnever0001', symbol=symbol,
                       side='buy', size=1.0)
        journal.record('order_events', order_ref=99, client_id='btlnever0001',
                       status='Submitted', at=datetime.datetime(2024, 1, 1))
        journal.close()
        engine = open_engine(url)
        with engine.begin() as conn:        # the process died: no 'stopped'
            conn.execute(update(tables.runs).values(status='running', pid=None))
        engine.dispose()
        for _ in range(60):
            if not [o for o in sim_orders(sim, venue) if o.is_open]:
                break
            sim.step()
        assert not [o for o in sim_orders(sim, venue) if o.is_open]
        journal = Journal.open(url)
        assert unfinished_run(journal.engine, 'bot') == run_id
        journal.start_run(resume=run_id)
        store = STORES[name].get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url,
                                          market_type=market_type(venue))
        try:
            assert reconcile(journal, store, name) == {'orders': 2, 'fills': 1}
            assert reconcile(journal, store, name) == {'orders': 0, 'fills': 0}
        finally:
            store.stop()
            journal.close()
        (trade,) = sim.trades(market=market)
    engine = open_engine(url, readonly=True)
    (fill,) = rows(engine, 'fills')
    assert (fill['trade_id'], fill['size'], fill['session'], fill['symbol']) == (
        str(trade.id), size, 1, symbol)
    events = [(e['order_ref'], e['status']) for e in rows(engine, 'order_events')]
    # backtrader's order refs count per process: the buy's is the fill's
    assert sorted(events[-2:], key=lambda e: e[1]) == [(fill['order_ref'], 'Completed'),
                                                       (99, 'Rejected')]
    engine.dispose()


def test_two_symbols_and_two_timeframes_are_journaled_per_symbol(tmp_path):
    """run_live with symbol=[BTC, ETH] and timeframe=[1h, 4h] (feeds named
    'BTC/USDT 1h', ...): each order, fill, trade and position is recorded
    under its symbol (not the feed's name), one position per symbol, and
    one equity row per bar of the run."""
    from livekit import LiveRun
    from test_multi_feed import sim_options
    symbols = ['BTC/USDT', 'ETH/USDT']

    def both(action):
        def act(s):
            for data, size in zip(s.datas[:2], (0.01, 0.1)):
                action(s, data, size)
        return act
    script = {6: both(lambda s, d, size: s.buy(data=d, size=size)),
              8: both(lambda s, d, size: s.close(data=d))}
    url = 'sqlite:///%s' % (tmp_path / 'j.db')
    journal = Journal.open(url)
    journal.start_run('binance', symbols, '1h', False)
    cerebro = btl.Cerebro()
    attach(cerebro, journal, exchange='binance')
    with venue_sim('binance-spot', **sim_options('binance-spot', tmp_path)) as sim:
        run = LiveRun(sim, script=script, max_bars=8, cerebro=cerebro, symbol=symbols,
                      timeframe=['1h', '4h'])
        # how many next() the backfill makes depends on where the 4h bars fall
        # (the hour of the day): wait for the first, as test_multi_feed does
        run.backfill = 1
        run.start()
        run.step(8)    # bars 6 and 8 of the script come however few the backfill made
        run.join()
    journal.close()
    engine = journal.engine
    assert [d._name for d in run.rec.strategy.datas][:2] == ['BTC/USDT 1h', 'ETH/USDT 1h']
    orders = rows(engine, 'orders')
    assert sorted((o['symbol'], o['side']) for o in orders) == [
        ('BTC/USDT', 'buy'), ('BTC/USDT', 'sell'), ('ETH/USDT', 'buy'), ('ETH/USDT', 'sell')]
    fills = rows(engine, 'fills')
    assert {f['symbol'] for f in fills} == set(symbols)
    for symbol, size in zip(symbols, (0.01, 0.1)):
        bought = sum(f['size'] for f in fills if f['symbol'] == symbol and f['size'] > 0)
        assert bought == pytest.approx(size, rel=0.01)     # spot: less the fee in coin
    assert sorted(t['symbol'] for t in rows(engine, 'trades')) == symbols
    positions = [s for s in rows(engine, 'snapshots') if s['kind'] == 'position']
    assert {p['name'] for p in positions} == set(symbols)
    # each snapshot: one row per symbol, in feed order (not one per feed)
    names = [p['name'] for p in positions]
    assert names == symbols * (len(names) // 2), names
    assert any(p['size'] for p in positions if p['name'] == 'ETH/USDT')
    # one equity row per bar of the 1h feeds, prenext bars included (how many of
    # those there are depends on where the 4h bars fall)
    assert len(rows(engine, 'equity')) == len(run.rec.strategy.datas[0])


@pytest.mark.parametrize('venue', ALL)
def test_orders_the_journal_never_saw_are_recovered_from_the_exchange(tmp_path, venue):
    """Each venue: a market order fills, but its rows never reach the database
    (still queued at a kill -9: deleted here). The restart's reconcile finds
    it through the account's trades: the order (client id, exchange id,
    final status) and its fill by trade id, once; a trade of the same account
    that is not the bot's (another client id) is left out."""
    from sqlalchemy import delete, update
    from backtrader_live.journal.recovery import reconcile
    from helpers import KEY, SECRET
    from venues import STORES, VENUES, exchange, market_type, sim_orders
    name, symbol, market = exchange(venue), VENUES[venue][2], VENUES[venue][4]
    size = unit(venue)
    url = 'sqlite:///%s' % (tmp_path / 'j.db')
    journal = Journal.open(url)
    run_id = journal.start_run(name, [symbol], '1h', False, name='bot')
    cerebro = btl.Cerebro()
    attach(cerebro, journal, exchange=name)
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: lambda s: s.buy(size=size)}, max_bars=1,
                       cerebro=cerebro)
        run.start().step(1)
        run.join()
        journal.close()
        engine = open_engine(url)
        with engine.begin() as conn:        # queued at the crash: never written
            for table in ('orders', 'order_events', 'fills'):
                conn.execute(delete(tables.metadata.tables[table]))
            conn.execute(update(tables.runs).values(status='running', pid=None))
        engine.dispose()
        store = STORES[name].get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url,
                                          market_type=market_type(venue))
        try:
            store.call('create_order', symbol, 'market', 'buy', size, None,
                       {store.CLIENT_ID_PARAM: 'manual0001'}, idempotent=False)
            journal = Journal.open(url)
            journal.start_run(resume=run_id)
            found = reconcile(journal, store, name)
            again = reconcile(journal, store, name)
        finally:
            store.stop()
            journal.close()
        ours = [o for o in sim_orders(sim, venue) if o.client_id.startswith('btl')]
        trades = [tr for tr in sim.trades(market=market) if tr.order_id == ours[0].id]
    assert len(ours) == 1 and trades
    assert found == {'orders': 1, 'fills': len(trades)} and again == {'orders': 0, 'fills': 0}
    engine = open_engine(url, readonly=True)
    (order,) = rows(engine, 'orders')
    assert (order['client_id'], order['exchange_id'], order['symbol'], order['side']) == (
        ours[0].client_id, str(ours[0].id), symbol, 'buy')
    assert order['session'] == 1 and order['ref'] < 0
    fills = rows(engine, 'fills')
    assert sorted(f['trade_id'] for f in fills) == sorted(str(tr.id) for tr in trades)
    assert {(f['order_ref'], f['client_id'], f['session']) for f in fills} == {
        (order['ref'], ours[0].client_id, 1)}
    assert sum(f['size'] for f in fills) == pytest.approx(size)
    (event,) = rows(engine, 'order_events')
    assert event['status'] == 'Completed' and 'never recorded' in event['reason']
    engine.dispose()
