"""Emulated orders and order links survive a kill -9 (issue 14,
backtrader_live/rearm.py): a real trading process (``backtrader-live run``)
is killed with SIGKILL while a bracket waits for its parent, while a local
trailing stop is watched, and while an OCO pair (an exchange target, a local
trailing stop) guards a position; the restart re-arms each from the journal
and the exchange's state, exactly once, on all six venues, and the stop
then triggers.

Prices (the simulator's real candles from bar 600; live bar 1 closes at
4191.53): bar 2 trades 4174.97-4206.77 and closes 4198.99, bar 3 closes
4260.41 (low 4188.81), bar 4 low 4250.0, bar 5 low 4221.64, bar 9 low
4158.84.
"""
import os
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest
from sqlalchemy import select

from backtrader_live.journal import open_engine, tables
from helpers import KEY, SECRET, eventually
from journalkit import db_url  # noqa: F401
from venues import ALL, SYMBOL_ID, VENUES, sim_orders, sim_position, unit, venue_sim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STRATEGY = '''
import os
import backtrader as bt


class Rearm(bt.Strategy):
    """Phase 1 places the scenario's orders; phase 2 (after the restart)
    places nothing: what guards the position then was re-armed."""

    params = (('size', 0.01), ('exit', 0.01))

    def __init__(self):
        self.live_bars = 0
        self.scenario = os.environ['BTL_REARM_SCENARIO']
        self.phase = int(os.environ['BTL_REARM_PHASE'])

    def notify_order(self, order):
        print('ORDER %s %s %s %s' % (order.ref, order.getordername(), order.getstatusname(),
                                     order.info.get('rearmed_from')), flush=True)

    def notify_store(self, msg, *args, **kwargs):
        print('STORE %s %r' % (msg, args), flush=True)

    def next(self):
        if self.data._laststatus != self.data.LIVE:
            return
        self.live_bars += 1
        if self.phase != 1:
            return
        size, exit = self.p.size, self.p.exit
        if self.scenario.startswith('bracket') and self.live_bars == 1:
            self.buy_bracket(size=size, price=4180.0, stopprice=4170.0, limitprice=4500.0)
        elif self.scenario in ('trail', 'oco', 'oco-filled') and self.live_bars == 1:
            self.buy(size=size)
        elif self.scenario == 'trail' and self.live_bars == 2:
            self.sell(size=exit, exectype=bt.Order.StopTrail, trailamount=30.0)
        elif self.scenario.startswith('oco') and self.live_bars == 2:
            # 'oco-filled': a target the next bar (high 4307.54) fills
            price = 4250.0 if self.scenario == 'oco-filled' else 4600.0
            target = self.sell(size=exit, price=price, exectype=bt.Order.Limit)
            self.sell(size=exit, exectype=bt.Order.StopTrail, trailamount=30.0, oco=target)
'''

#: bars the first process trades before it is killed, the live bars the
#: second one runs (the stop triggers on the last but one), and the bars that
#: close while no process runs ('bracket-filled': its parent fills then)
PHASES = {'bracket': (1, 9, 0), 'bracket-filled': (1, 8, 1), 'trail': (2, 4, 0),
          'oco': (2, 4, 0)}
ALIVE = ('Created', 'Submitted', 'Accepted', 'Partial')


def _config(venue, endpoint, journal_url, max_bars, scale=1):
    exchange, market_type, symbol = VENUES[venue][:3]
    spot = VENUES[venue][4] == 'spot'
    size = unit(venue) * scale
    return textwrap.dedent('''\
    version = 1
    [live]
    exchange = "%s"
    market_type = "%s"
    symbol = "%s"
    timeframe = "1h"
    endpoint = "%s"
    backfill_bars = 3
    max_bars = %d
    paper_trading = false
    [strategy]
    class = "strategy.py:Rearm"
    [strategy.params]
    size = %r
    exit = %r
    [journal]
    url = "%s"
    ''' % (exchange, market_type, symbol, endpoint, max_bars, size,
           round(size * 0.999, 8) if spot else size, journal_url))


class Bot:
    """``backtrader-live run`` as a real process against the simulator."""

    def __init__(self, tmp_path, venue, sim, scenario, journal_url, scale=1):
        self.tmp_path, self.venue, self.sim = tmp_path, venue, sim
        self.scale = scale      # the orders' size, in the venue's units
        self.scenario, self.url = scenario, journal_url
        (tmp_path / 'strategy.py').write_text(STRATEGY)
        prefix = VENUES[venue][0].upper()
        self.env = dict(os.environ, BTL_REARM_SCENARIO=scenario,
                        PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
                        **{prefix + '_API_KEY': KEY, prefix + '_API_SECRET': SECRET})
        self.proc = None

    def start(self, phase, max_bars):
        (self.tmp_path / 'bot.toml').write_text(
            _config(self.venue, self.sim.base_url, self.url, max_bars, self.scale))
        env = dict(self.env, BTL_REARM_PHASE=str(phase))
        self.proc = subprocess.Popen([sys.executable, '-m', 'backtrader_live', 'run',
                                      'bot.toml', '-v'], cwd=str(self.tmp_path), env=env,
                                     text=True, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        return self

    def rows(self, table):
        if table == 'equity' and not self._migrated():
            return []
        engine = open_engine(self.url, readonly=True)
        try:
            tab = tables.metadata.tables[table]
            with engine.connect() as conn:
                return [r._asdict() for r in conn.execute(select(tab).order_by(tab.c.id))]
        finally:
            engine.dispose()

    def _migrated(self):
        try:
            self.rows('runs')
        except Exception:       # created but not migrated yet
            return False
        return True

    def step_bars(self, bars, base):
        """Wait for the backfill's equity rows (after ``base``), then close
        ``bars`` bars, each time until the run journaled that bar."""
        self.sim.wait_subscribed(VENUES[self.venue][3], timeout=60)
        eventually(lambda: len(self.rows('equity')) >= base + 3 or self.proc.poll() is not None,
                   60)
        for _ in range(bars):
            seen = len(self.rows('equity'))
            self.sim.step()
            eventually(lambda: len(self.rows('equity')) > seen or self.proc.poll() is not None,
                       30)

    def output(self):
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.communicate(timeout=30)[0]

    def kill(self):
        self.proc.kill()                    # SIGKILL: no clean-up at all
        return self.proc.communicate(timeout=30)[0]

    def finish(self, bars, base):
        try:
            self.step_bars(bars, base)
            out = self.proc.communicate(timeout=60)[0]
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        assert self.proc.returncode == 0, out
        return out


def _alive_stops(bot):
    return [r for r in bot.rows('emulated_orders') if r['status'] in ALIVE
            and r['exectype'] in ('Stop', 'StopTrail')]


def _phase_one(bot, scenario):
    """Trade until the scenario's orders stand (and are journaled), then kill."""
    bars = PHASES[scenario][0]
    bot.start(1, 30)
    try:
        bot.step_bars(bars, 0)
        eventually(lambda: len(_alive_stops(bot)) == 1 or bot.proc.poll() is not None, 30)
        assert len(_alive_stops(bot)) == 1, bot.output()
    except BaseException:
        bot.output()
        raise
    return bot.kill()


def _exits(sim, venue):
    """The exchange's exit orders (sells)."""
    return [o for o in sim_orders(sim, venue) if o.side.upper() == 'SELL']


@pytest.mark.parametrize('scenario', sorted(PHASES))
@pytest.mark.parametrize('venue', ALL)
def test_kill_9_then_restart_rearms_once_and_the_stop_triggers(tmp_path, venue, scenario):
    with venue_sim(venue) as sim:
        bot = Bot(tmp_path, venue, sim, scenario, 'sqlite:///%s' % (tmp_path / 'journal.db'))
        _check_restart(bot, sim, venue, scenario)


def test_kill_9_then_restart_rearms_from_postgresql(tmp_path, db_url):  # noqa: F811
    """The same through a PostgreSQL journal (and SQLite: the fixture's both)."""
    venue = 'binance-usdm'
    with venue_sim(venue) as sim:
        _check_restart(Bot(tmp_path, venue, sim, 'oco', db_url), sim, venue, 'oco')


def _check_restart(bot, sim, venue, scenario):
    _phase_one(bot, scenario)
    (stop,) = _alive_stops(bot)
    assert stop['session'] == 1
    before = [o.id for o in _exits(sim, venue)]
    base = len(bot.rows('equity'))
    _, bars, down = PHASES[scenario]
    for _ in range(down):
        sim.step()
    if down:        # the parent filled while no process ran
        assert [o.status.upper() for o in sim_orders(sim, venue)] == ['FILLED']
    bot.start(2, bars)
    try:
        # re-armed at the first bar, before any live one: exactly one stop, in session 2
        eventually(lambda: [r for r in _alive_stops(bot) if r['session'] == 2]
                   or bot.proc.poll() is not None, 60)
        (armed,) = _alive_stops(bot)
        assert armed['session'] == 2 and armed['rearmed_from'] == '1:%d' % stop['ref']
        # (sized to the parent's fill: on spot net of the fee taken in the coin)
        assert armed['size'] == pytest.approx(stop['size'], rel=2e-3)
        if not scenario.startswith('bracket'):      # trailing from its persisted stop
            assert armed['price'] == pytest.approx(stop['price'])
        out = bot.finish(bars, base)
    except BaseException:
        if bot.proc.poll() is None:
            print(bot.output())
        raise
    assert 'continuing it as session 2' in out, out
    assert 're-armed' in out, out
    # it triggered after the restart: the position is closed by one exit
    spot = VENUES[venue][4] == 'spot'
    assert sim_position(sim, venue) == pytest.approx(0.0, abs=unit(venue) * 0.01), out
    exits = _exits(sim, venue)
    filled = [o for o in exits if o.status.upper() == 'FILLED']
    assert len(filled) == 1, (exits, out)
    assert filled[0].id not in before
    # nothing doubled: the other exit (a target) ended cancelled, none is open
    assert not [o for o in exits if o.is_open], exits
    if scenario != 'trail':
        assert sorted(o.status.upper()[:6] for o in exits) == ['CANCEL', 'FILLED'], exits
    if scenario.startswith('bracket') and not spot:
        assert filled[0].reduce_only
    assert not _alive_stops(bot)
    # the strategy of the second process was handed the re-armed stop
    assert ' re-armed ' in out or 'rearmed' in out
    assert [line for line in out.splitlines() if line.startswith('ORDER ')
            and line.endswith(' 1:%d' % stop['ref'])], out


def _fill_resting_orders_in_part(sim, venue, qty):
    """The bar that closes next fills resting limit orders for ``qty`` in all
    (the engine's share of a bar's volume set from that bar's volume)."""
    engine = sim.venue_engine(sim.venues[VENUES[venue][4]])
    feed = sim.clock.primary
    row = feed.rows[feed.index_at(sim.clock.now)]
    volume = row[5]
    rules = engine.markets[SYMBOL_ID[venue]]
    if getattr(rules, 'inverse', False):    # counted in contracts there (sim/derivatives.py)
        volume = volume * row[4] / float(rules.contract_size)
    engine.liquidity = Decimal(str(qty)) / Decimal(str(volume)) * Decimal('1.000001')
    return engine


@pytest.mark.parametrize('venue', ALL)
def test_kill_9_a_parent_partly_filled_while_down_gets_its_exits_at_once(tmp_path, venue):
    """The bracket's parent fills in part while no process runs and rests
    for the rest: the restart sends its exits now, for that part, and the
    stop closes it. (Before: the exits waited for the parent's next fill,
    the part in the position unguarded; here it never comes.)"""
    with venue_sim(venue) as sim:
        bot = Bot(tmp_path, venue, sim, 'bracket', 'sqlite:///%s' % (tmp_path / 'journal.db'),
                  scale=2)
        _phase_one(bot, 'bracket')
        (stop,) = _alive_stops(bot)
        base = len(bot.rows('equity'))
        engine = _fill_resting_orders_in_part(sim, venue, unit(venue))
        sim.step()                          # half of the parent fills, no process runs
        engine.liquidity = Decimal(0)       # and no more of it, ever
        (parent,) = [o for o in sim_orders(sim, venue) if o.side.upper() == 'BUY']
        assert parent.status.upper() == 'PARTIALLY_FILLED', parent
        assert float(parent.executed) == pytest.approx(unit(venue))
        bot.start(2, 8)
        try:
            eventually(lambda: [r for r in _alive_stops(bot) if r['session'] == 2]
                       or bot.proc.poll() is not None, 60)
            (armed,) = _alive_stops(bot)
            assert armed['rearmed_from'] == '1:%d' % stop['ref']
            out = bot.finish(8, base)
        except BaseException:
            if bot.proc.poll() is None:
                print(bot.output())
            raise
        assert 'while no process ran: its exits go out now' in out, out
        # the stop closed the part: nothing left, one exit filled, none open
        assert sim_position(sim, venue) == pytest.approx(0.0, abs=unit(venue) * 0.01), out
        exits = _exits(sim, venue)
        assert [o.status.upper()[:6] for o in exits if o.status.upper() == 'FILLED'] == \
            ['FILLED'], (exits, out)
        assert not [o for o in exits if o.is_open], exits
        # an exit filled while the parent still worked: its rest is cancelled,
        # as a bracket's is (bracketsize.py)
        assert [(o.status.upper(), float(o.executed)) for o in sim_orders(sim, venue)
                if o.side.upper() == 'BUY'] == [('CANCELED', pytest.approx(unit(venue)))]


def test_no_journal_warns_loudly_at_start_and_at_the_first_emulated_order(caplog):
    """Without a journal an emulated order lives in the process only: said
    at start, and again naming the order when one is made."""
    import backtrader_live as btl
    from test_order_links import RefRecording
    from venues import live_run
    venue = 'binance-usdm'

    def place(s):
        s.trail = s.sell(size=unit(venue), exectype=btl.Order.StopTrail, trailamount=50.0)
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: place}, max_bars=1, strategy=RefRecording)
        run.start()
        run.step(1)
        run.join()
    said = [r for r in caplog.records if r.levelname == 'WARNING'
            and 'no journal' in r.getMessage()]
    assert len(said) == 2, [r.getMessage() for r in caplog.records]
    assert 'cannot survive a restart' in said[0].getMessage()
    assert 'order %d (StopTrail)' % run.rec.strategy.trail.ref in said[1].getMessage()


def _session(sim, venue, url, script, bars, resume=None):
    """One in-process session of a journaled live run (``resume``: the run
    it continues, as ``backtrader-live run`` does after a crash)."""
    import backtrader_live as btl
    from backtrader_live.journal import Journal, attach
    from test_order_links import RefRecording
    from venues import live_run
    journal = Journal.open(url)
    journal.start_run(name='rearm', symbols=[VENUES[venue][2]], resume=resume)
    cerebro = btl.Cerebro()
    attach(cerebro, journal, exchange=VENUES[venue][0])
    run = live_run(sim, venue, script=script, max_bars=bars, strategy=RefRecording,
                   cerebro=cerebro)
    try:
        run.start()
        run.step(bars)
        run.join()
    finally:
        journal.close('stopped')
    return run, journal


def _as_if_killed_while_sending(url, client_id=None):
    """The journal as a kill -9 leaves it between a local trigger's send and
    its answer: the row 'firing' with the client id (written before the
    create), still Accepted; the run still 'running'."""
    from sqlalchemy import update
    engine = open_engine(url)
    tab = tables.emulated_orders
    with engine.begin() as conn:
        conn.execute(update(tab).where(tab.c.exectype == 'StopTrail').values(
            status='Accepted', **({'client_id': client_id} if client_id else {})))
        conn.execute(update(tables.runs).values(status='running'))
    engine.dispose()


@pytest.mark.parametrize('venue', ['binance-usdm', 'bybit-inverse'])
def test_a_triggered_local_stop_found_on_the_exchange_is_adopted_never_sent_again(
        tmp_path, venue):
    """Session 1: a trailing stop triggers (bar 10) and its market order fills.
    The journal is put back as a kill between the send and the answer leaves
    it; session 2 finds the order by its client id and sends nothing."""
    url = 'sqlite:///%s' % (tmp_path / 'j.db')

    def place(s):
        s.buy(size=unit(venue))
        s.trail = s.sell(size=unit(venue), exectype=btl_order().StopTrail, trailamount=30.0)
    with venue_sim(venue) as sim:
        first, journal = _session(sim, venue, url, {6: place}, 5)
        (row,) = [r for r in _rows(url) if r['exectype'] == 'StopTrail']
        assert (row['role'], row['status']) == ('firing', 'Completed') and row['client_id']
        _as_if_killed_while_sending(url)
        sells = len(_exits(sim, venue))
        second, _ = _session(sim, venue, url, {}, 2, resume=journal.run_id)
        assert len(_exits(sim, venue)) == sells == 1        # never sent again
        (old,) = [r for r in _rows(url) if r['session'] == 1 and r['exectype'] == 'StopTrail']
        assert old['status'] == 'Completed' and 'while no process ran' in old['reason']
        assert [m for m in second.rec.store_msgs if m[0] == 'rearmed']


@pytest.mark.parametrize('venue', ['binance-spot', 'bybit-linear'])
def test_a_triggered_local_stop_absent_from_the_exchange_is_sent_once(tmp_path, venue):
    """As above, but the create never reached the exchange (its client id is
    unknown there): the restart sends it, once."""
    url = 'sqlite:///%s' % (tmp_path / 'j.db')
    exit_size = unit(venue) * (0.999 if VENUES[venue][4] == 'spot' else 1)

    def place(s):
        s.buy(size=unit(venue))

    def trail(s):
        s.trail = s.sell(size=exit_size, exectype=btl_order().StopTrail, trailamount=30.0)
    with venue_sim(venue) as sim:
        _, journal = _session(sim, venue, url, {6: place, 7: trail}, 4)
        (row,) = [r for r in _rows(url) if r['exectype'] == 'StopTrail']
        assert row['status'] == 'Canceled'      # the clean stop cancelled it: put it back
        _as_if_killed_while_sending(url, client_id='btl0never0sent')
        from sqlalchemy import update
        engine = open_engine(url)
        with engine.begin() as conn:
            conn.execute(update(tables.emulated_orders).values(role='firing'))
        engine.dispose()
        second, _ = _session(sim, venue, url, {}, 1, resume=journal.run_id)
        sells = [o for o in _exits(sim, venue)]
        assert len(sells) == 1 and sells[0].status.upper() == 'FILLED', sells
        assert sim_position(sim, venue) == pytest.approx(0.0, abs=unit(venue) * 0.01)


def btl_order():
    import backtrader_live as btl
    return btl.Order


def _rows(url):
    engine = open_engine(url, readonly=True)
    try:
        tab = tables.emulated_orders
        with engine.connect() as conn:
            return [r._asdict() for r in conn.execute(select(tab).order_by(tab.c.id))]
    finally:
        engine.dispose()


def test_bars_missed_beyond_the_backfill_are_said_when_a_stop_is_rearmed(tmp_path, caplog):
    """Down longer than the backfill: the bars in between were never checked
    against the trailed stop. The re-armed order says so (log, order.info,
    the 'rearmed' notification) instead of pretending it watched them."""
    from sqlalchemy import update
    venue = 'bybit-linear'
    url = 'sqlite:///%s' % (tmp_path / 'j.db')

    def place(s):
        s.buy(size=unit(venue))
        s.trail = s.sell(size=unit(venue), exectype=btl_order().StopTrail, trailamount=30.0)
    with venue_sim(venue) as sim:
        _, journal = _session(sim, venue, url, {6: place}, 1)
        engine = open_engine(url)
        with engine.begin() as conn:    # as a kill -9 leaves it: watched, the run running
            conn.execute(update(tables.emulated_orders).values(status='Accepted'))
            conn.execute(update(tables.runs).values(status='running'))
        engine.dispose()
        for _ in range(10):             # ten bars close while no process runs
            sim.step()
        second, _ = _session(sim, venue, url, {}, 1, resume=journal.run_id)
    (rearmed,) = [m[1] for m in second.rec.store_msgs if m[0] == 'rearmed']
    (entry,) = rearmed['orders']
    assert entry['action'] == 'rearmed' and 'never checked against the stop' in entry['reason']
    assert [r for r in caplog.records if 'not in the backfill' in r.getMessage()]


@pytest.mark.parametrize('venue', ALL)
def test_kill_9_an_oco_sibling_filled_while_down_ends_the_other(tmp_path, venue):
    """The OCO pair's exchange target fills while no process runs: the
    restart finds it filled (by client id), so the local trailing stop is not
    re-armed (ended, said): nothing sells twice."""
    with venue_sim(venue) as sim:
        bot = Bot(tmp_path, venue, sim, 'oco-filled', 'sqlite:///%s' % (tmp_path / 'j.db'))
        bot.start(1, 30)
        try:
            bot.step_bars(2, 0)
            eventually(lambda: len(_alive_stops(bot)) == 1 or bot.proc.poll() is not None, 30)
            assert len(_alive_stops(bot)) == 1, bot.output()
        except BaseException:
            bot.output()
            raise
        bot.kill()
        (stop,) = _alive_stops(bot)
        base = len(bot.rows('equity'))
        sim.step()              # the target fills, no process running
        assert [o.status.upper() for o in _exits(sim, venue)] == ['FILLED']
        bot.start(2, 2)
        out = bot.finish(2, base)
        (old,) = [r for r in bot.rows('emulated_orders') if (r['session'], r['ref']) == (
            1, stop['ref'])]
        assert old['status'] == 'Canceled' and 'OCO sibling' in old['reason'], old
        assert not _alive_stops(bot)
        assert [o.status.upper() for o in _exits(sim, venue)] == ['FILLED'], out
        assert sim_position(sim, venue) == pytest.approx(0.0, abs=unit(venue) * 0.01)
        assert 'its OCO sibling' in out


def test_a_new_run_over_a_crashed_one_says_its_emulated_orders_are_not_rearmed(tmp_path,
                                                                             caplog):
    """``--new-run`` after a crash starts afresh: the crashed run's emulated
    orders are not re-armed, and that is said loudly, never silently."""
    from sqlalchemy import update
    venue = 'binance-usdm'
    url = 'sqlite:///%s' % (tmp_path / 'j.db')

    def place(s):
        s.buy(size=unit(venue))
        s.trail = s.sell(size=unit(venue), exectype=btl_order().StopTrail, trailamount=30.0)
    with venue_sim(venue) as sim:
        _session(sim, venue, url, {6: place}, 1)
        engine = open_engine(url)
        with engine.begin() as conn:    # as a kill -9 leaves it
            conn.execute(update(tables.emulated_orders).values(status='Accepted'))
            conn.execute(update(tables.runs).values(status='running'))
        engine.dispose()
        second, _ = _session(sim, venue, url, {}, 1)       # a new run, not resumed
    (said,) = [r.getMessage() for r in caplog.records if 'NOT re-armed' in r.getMessage()
               and 'run 1' in r.getMessage()]
    assert '1 emulated order(s)' in said and 'StopTrail' in said
    assert [m for m in second.rec.store_msgs if m[0] == 'not rearmed']
