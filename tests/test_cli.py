"""The command line: config init/show/migrate, check (offline and against the
simulator), run as a real subprocess against the simulator (journaled,
status lines, Ctrl-C), report from the journal, and the sim/demo wrappers."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from backtrader_live.cli import app
from backtrader_live.journal import open_engine
from backtrader_live.journal.report import summarize
from helpers import KEY, SECRET, eventually

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
runner = CliRunner()

STRATEGY = '''
import backtrader as bt

class BuyThenClose(bt.Strategy):
    """Buys on the first live bar, closes on the next one."""
    params = (('size', 0.01),)

    def __init__(self):
        self.live_bars = 0

    def next(self):
        if self.data._laststatus != self.data.LIVE:
            return
        self.live_bars += 1
        if self.live_bars == 1:
            self.buy(size=self.p.size)
        elif self.live_bars == 2:
            self.close()
'''


def config_text(endpoint='http://127.0.0.1:1', max_bars=3, extra=''):
    return textwrap.dedent('''\
    version = 1
    [live]
    exchange = "binance"
    symbol = "BTC/USDT"
    timeframe = "1h"
    endpoint = "%s"
    backfill_bars = 3
    max_bars = %d
    [strategy]
    class = "strategy.py:BuyThenClose"
    [journal]
    url = "sqlite:///journal.db"
    ''' % (endpoint, max_bars)) + extra


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / 'strategy.py').write_text(STRATEGY)
    return tmp_path


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def test_config_init_show_and_refusals(workdir):
    path = workdir / 'bot.toml'
    assert invoke('config', 'init', path).exit_code == 0
    result = invoke('config', 'init', path)
    assert result.exit_code == 2 and 'use --force' in result.output
    shown = invoke('config', 'show', path)
    assert shown.exit_code == 0 and 'max_drawdown_limit = 0.15' in shown.output
    path.write_text(path.read_text().replace('cash =', 'csh ='))
    result = invoke('config', 'show', path)
    assert result.exit_code == 2 and "live.csh: unknown key (did you mean 'cash'?)" in \
        result.output
    assert invoke('config', 'show', workdir / 'none.toml').exit_code == 2


def test_config_migrate_writes_version_1_and_says_what_changed(workdir):
    path = workdir / 'old.toml'
    path.write_text('exchange = "binance"\nsymbol = "BTC/USDT"\ntimeframe = "1h"\n'
                    'strategy = "strategy.py:BuyThenClose"\nsize = 0.5\n')
    result = invoke('config', 'migrate', path)
    assert result.exit_code == 0, result.output
    assert 'v0->v1: size -> [strategy.params] size' in result.output
    assert (workdir / 'old.toml.bak').read_text().startswith('exchange')
    assert 'version = 1' in path.read_text()
    again = invoke('config', 'migrate', path)
    assert again.exit_code == 0 and 'already version 1' in again.output


def test_check_offline_and_bad_configs(workdir):
    path = workdir / 'bot.toml'
    path.write_text(config_text())
    result = invoke('check', path, '--no-connect')
    assert result.exit_code == 0, result.output
    assert 'option keys valid for binance' in result.output
    path.write_text(config_text().replace('BuyThenClose', 'Nope'))
    result = invoke('check', path, '--no-connect')
    assert result.exit_code == 1 and 'FAIL' in result.output and "has no 'Nope'" in \
        result.output
    path.write_text(config_text() + '[options.store]\napikey = "x"\n')
    result = invoke('check', path)
    assert result.exit_code == 2 and 'secrets are not accepted' in result.output


def test_check_against_the_simulator(workdir, sim):
    path = workdir / 'bot.toml'
    path.write_text(config_text(sim.base_url))
    env = {'BINANCE_API_KEY': KEY, 'BINANCE_API_SECRET': SECRET}
    result = invoke('check', path, env=env)
    assert result.exit_code == 0, result.output
    for expected in ('binance answers and accepts the keys', 'amount step', 'offset to',
                     'USDT'):
        assert expected in result.output
    path.write_text(config_text(sim.base_url).replace('BTC/USDT', 'NOPE/USDT'))
    result = invoke('check', path, env=env)
    assert result.exit_code == 1 and 'market NOPE/USDT' in result.output


def test_check_and_backtest_with_a_list_of_symbols(workdir, sim):
    """check asks the market rules of every symbol of a list; backtest (one
    feed) refuses a list by name."""
    path = workdir / 'bot.toml'
    path.write_text(config_text(sim.base_url).replace(
        'symbol = "BTC/USDT"', 'symbol = ["BTC/USDT", "NOPE/USDT"]'))
    result = invoke('check', path, env={'BINANCE_API_KEY': KEY, 'BINANCE_API_SECRET': SECRET})
    assert result.exit_code == 1, result.output
    lines = {line.split('│')[1].strip(): line for line in result.output.splitlines()
             if line.count('│') > 2}
    assert ' ok ' in lines['market BTC/USDT'] and 'FAIL' in lines['market NOPE/USDT']
    result = invoke('backtest', path)
    assert result.exit_code == 2 and 'backtest runs one feed: [live] symbol is the list' in \
        result.output


def start_cli_run(workdir, sim, *extra):
    (workdir / 'bot.toml').write_text(config_text(sim.base_url, max_bars=3))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.Popen([sys.executable, '-m', 'backtrader_live', 'run', 'bot.toml',
                             *extra], cwd=str(workdir), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def journal_count(path, query):
    if not path.exists():
        return 0
    engine = open_engine('sqlite:///%s' % path, readonly=True)
    try:
        from sqlalchemy import text
        with engine.connect() as conn:
            return conn.execute(text(query)).scalar()
    except Exception:        # created but not migrated yet
        return 0
    finally:
        engine.dispose()


def equity_rows(path):
    return journal_count(path, 'SELECT count(*) FROM equity')


def step_until(proc, sim, journal, bars, base=0):
    """Wait until the run is subscribed and journaled its backfill (3 bars of
    equity after ``base`` rows), then close ``bars`` bars, each time waiting
    until the run journaled that bar's equity."""
    sim.wait_subscribed('btcusdt@kline_1h', timeout=60)
    eventually(lambda: equity_rows(journal) >= base + 3 or proc.poll() is not None, 60)
    for _ in range(bars):
        seen = equity_rows(journal)
        sim.step()
        eventually(lambda: equity_rows(journal) > seen or proc.poll() is not None, 30)


def test_run_a_config_then_report(workdir, sim):
    proc = start_cli_run(workdir, sim)
    try:
        step_until(proc, sim, workdir / 'journal.db', 3)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    bar_lines = [line for line in output.splitlines() if ' bar ' in line]
    assert len(bar_lines) == 3 and 'BTC/USDT close' in bar_lines[0], output
    engine = open_engine('sqlite:///%s' % (workdir / 'journal.db'), readonly=True)
    result = summarize(engine)
    engine.dispose()
    assert result['summary']['trades'] == 1 and result['summary']['fills'] == 2
    report = invoke('report', workdir / 'journal.db', '--csv', workdir / 'csv',
                    '--json', workdir / 'r.json', '--png', workdir / 'equity.png',
                    '--html', workdir / 'report.html')
    assert report.exit_code == 0, report.output
    check_tearsheet((workdir / 'report.html').read_text(), result)
    assert 'per symbol' in report.output and 'BTC/USDT' in report.output
    assert 'sharpe' in report.output and (workdir / 'equity.png').stat().st_size > 1000
    data = json.loads((workdir / 'r.json').read_text())
    assert data['summary']['trades'] == 1 and len(data['fills']) == 2
    assert (workdir / 'csv' / 'fills.csv').read_text().count('\n') == 3
    runs = invoke('report', workdir / 'journal.db', '--runs')
    assert runs.exit_code == 0 and 'stopped' in runs.output
    assert invoke('report', workdir / 'journal.db', '--run', 9).exit_code == 2
    assert invoke('report', workdir / 'journal.db', '--since', 'x').exit_code == 2
    since = invoke('report', workdir / 'journal.db', '--since', '2000-01-01')
    assert since.exit_code == 0 and 'run(s) 1' in since.output


def check_tearsheet(page, result):
    """The HTML tear-sheet holds the journal's figures, the trades and the chart."""
    import re
    shown = dict(re.findall(r'<tr data-key="(\w+)"><th class="text">\w+</th><td>([^<]*)</td>',
                            page))
    summary = result['summary']
    for key in ('pnl', 'pnl_net', 'fees', 'max_drawdown', 'end_equity'):
        assert float(shown[key]) == pytest.approx(summary[key], rel=1e-9), key
    assert int(shown['trades']) == summary['trades'] == 1
    assert int(shown['fills']) == summary['fills'] == 2
    assert page.count('<img alt="equity curve" src="data:image/png;base64,') == 1
    assert '<h2>Trades (1)</h2>' in page and 'BTC/USDT' in page
    assert '<script' not in page and 'http' not in page      # self-contained


def test_ctrl_c_stops_a_run_cleanly(workdir, sim):
    proc = start_cli_run(workdir, sim)
    try:
        step_until(proc, sim, workdir / 'journal.db', 1)
        proc.send_signal(signal.SIGINT)
        sim.step()       # the feed notices the stop request at its next wake-up
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert 'Traceback' not in output
    engine = open_engine('sqlite:///%s' % (workdir / 'journal.db'), readonly=True)
    from backtrader_live.journal.report import runs
    assert [r['status'] for r in runs(engine)] == ['stopped']
    engine.dispose()


def test_sim_and_demo_wrappers():
    result = invoke('sim', '--exchange', 'nowhere')
    assert result.exit_code == 2
    result = invoke('demo', '--bars', '0')
    assert result.exit_code == 2 and 'must be positive' in result.output


def test_the_readme_demo_command_runs(tmp_path):
    """`python -m backtrader_live demo` (the README's first command), as a
    process: the demo's strategy and analyzers are classes of a module loaded
    from samples/, which backtrader's metaclasses look up in sys.modules."""
    proc = subprocess.run([sys.executable, '-m', 'backtrader_live', 'demo', '--bars', '5',
                           '--backfill', '40', '--no-plot'], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert 'bars          5 live after 40 backfilled' in output and 'Traceback' not in output


def test_run_in_process_with_sizer_analyzers_risk_and_notifications(workdir, sim, caplog):
    """The same command in this process (so its lines are measured), with the
    config's optional sections: sizer, analyzers, RiskAnalyzer, notifications."""
    import logging
    import threading
    from backtrader_live.cli import run as run_cmd
    extra = textwrap.dedent('''
    [sizer]
    class = "FixedSize"
    params = { stake = 1 }
    [[analyzers]]
    class = "TradeAnalyzer"
    [[analyzers]]
    class = "backtrader.analyzers:DrawDown"
    params = { _name = "dd" }
    [risk]
    enabled = true
    [notifications]
    methods = ["log"]
    ''')
    path = workdir / 'bot.toml'
    path.write_text(config_text(sim.base_url, max_bars=2, extra=extra).replace(
        'url = "sqlite:///journal.db"', 'url = "sqlite:///%s"' % (workdir / 'j.db')))
    errors = []

    def target():
        try:
            run_cmd.run(str(path), None, None, None, True, False)
        except BaseException as exc:      # reported below
            errors.append(exc)
    worker = threading.Thread(target=target, name='test-cli-run')
    with caplog.at_level(logging.INFO, logger='backtrader_live.cli'):
        worker.start()
        step_until(worker_proc(worker), sim, workdir / 'j.db', 2)
        worker.join(30)
    assert not worker.is_alive() and not errors, errors
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith('bar ')]
    assert len(lines) == 2 and 'open_orders' in lines[0] and 'stream ok' in lines[0]
    assert 'journal: run 1 stopped' in caplog.text


def test_run_a_two_symbol_two_timeframe_config_journaled(workdir, make_sim):
    """A config with symbol and timeframe lists runs (in this process) and the
    journal says which symbol each order and position is: the run's symbols,
    its bar (the shortest timeframe), orders under BTC/USDT (data0), one
    position row per symbol."""
    import threading
    from backtrader_live.cli import run as run_cmd
    from test_multi_feed import sim_options
    sim = make_sim(**sim_options('binance-spot', workdir))
    path = workdir / 'bot.toml'
    path.write_text(config_text(sim.base_url, max_bars=3).replace(
        'symbol = "BTC/USDT"', 'symbol = ["BTC/USDT", "ETH/USDT"]').replace(
        'timeframe = "1h"', 'timeframe = ["1h", "4h"]').replace(
        'url = "sqlite:///journal.db"', 'url = "sqlite:///%s"' % (workdir / 'j.db')))
    errors = []

    def target():
        try:
            run_cmd.run(str(path), None, None, None, True, False)
        except BaseException as exc:      # reported below
            errors.append(exc)
    worker = threading.Thread(target=target, name='test-cli-run')
    worker.start()
    step_until(worker_proc(worker), sim, workdir / 'j.db', 3)
    worker.join(30)
    assert not worker.is_alive() and not errors, errors
    db = workdir / 'j.db'
    assert journal_count(db, "SELECT symbols || ' ' || timeframe FROM runs") == \
        'BTC/USDT,ETH/USDT 1h'
    assert journal_count(db, "SELECT group_concat(DISTINCT symbol) FROM orders") == 'BTC/USDT'
    assert journal_count(db, "SELECT group_concat(DISTINCT name) FROM snapshots "
                             "WHERE kind = 'position'") == 'BTC/USDT,ETH/USDT'


def worker_proc(thread):
    """``poll()`` for a thread, as step_until asks a process."""
    class Proc:
        @staticmethod
        def poll():
            return None if thread.is_alive() else 0
    return Proc


LIMIT_STRATEGY = '''
import backtrader as bt

class LimitThenClose(bt.Strategy):
    """A limit buy under the price on the first live bar; whatever position
    it holds (its own, or adopted after a restart) is closed on a later bar."""

    def __init__(self):
        self.live_bars = 0
        self.closing = False

    def next(self):
        if self.data._laststatus != self.data.LIVE:
            return
        self.live_bars += 1
        if self.position and not self.closing:
            self.closing = True
            self.close()
        elif self.live_bars == 1 and not self.position:
            self.buy(size=0.01, price=round(self.data.close[0] * 0.999, 2),
                     exectype=bt.Order.Limit)
'''


def test_kill_9_then_restart_continues_the_same_run(tmp_path, make_sim):
    """A real trading process killed with SIGKILL while its limit order rests;
    the order fills while no bot runs; the restart continues run 1 as session
    2, records the missed fill once (the exchange's trade id) and trades on."""
    from sqlalchemy import select
    from backtrader_live.journal import tables
    sim = make_sim(balances={'USDT': 100000.0})
    (tmp_path / 'strategy.py').write_text(LIMIT_STRATEGY)
    text = config_text(sim.base_url, max_bars=20).replace(
        'BuyThenClose', 'LimitThenClose').replace(
        'max_bars = 20', 'max_bars = 20\npaper_trading = false')
    (tmp_path / 'bot.toml').write_text(text)
    journal = tmp_path / 'journal.db'
    env = dict(os.environ, BINANCE_API_KEY=KEY, BINANCE_API_SECRET=SECRET,
               PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))

    def start(*extra):
        return subprocess.Popen([sys.executable, '-m', 'backtrader_live', 'run', 'bot.toml',
                                 *extra], cwd=str(tmp_path), env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def resting():
        return [o for o in sim.orders() if o.is_open]
    first = start()
    try:
        step_until(first, sim, journal, 1)
        eventually(lambda: resting() or first.poll() is not None, 30)
        assert resting(), first.communicate(timeout=10)[0]
        first.kill()                                     # SIGKILL: no clean-up at all
        first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    for _ in range(60):                                  # the limit fills, no bot running
        if not resting():
            break
        sim.step()
    assert not resting(), 'the limit order did not fill in 60 bars'
    base = equity_rows(journal)
    second = start('--max-bars', '2')
    try:
        step_until(second, sim, journal, 2, base)
        output, _ = second.communicate(timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert second.returncode == 0, output
    assert 'continuing it as session 2' in output
    engine = open_engine('sqlite:///%s' % journal, readonly=True)

    def table(name):
        tab = tables.metadata.tables[name]
        with engine.connect() as conn:
            return [r._asdict() for r in conn.execute(select(tab).order_by(tab.c.id))]
    (run,) = table('runs')
    assert (run['status'], run['sessions']) == ('stopped', 2)
    fills = table('fills')
    buy, sell = sorted(sim.trades(), key=lambda t: t.id)
    # bought 0.01, the fee taken in BTC: the adopted 0.00999 is what is sold
    assert [(f['session'], f['size']) for f in fills] == [(1, 0.01), (2, -0.00999)]
    # the missed fill carries the exchange's trade id (fetched); a fill seen live
    # carries it once the broker hands trade ids to the order (see analyzer.py)
    assert fills[0]['trade_id'] == str(buy.id)
    assert fills[1]['trade_id'] in (str(sell.id), fills[1]['client_id'] + '#1')
    buy_events = [e for e in table('order_events') if e['session'] == 1]
    assert buy_events[-1]['status'] == 'Completed' and 'reconciled' in buy_events[-1]['reason']
    engine.dispose()
    report = invoke('report', journal)
    assert report.exit_code == 0 and 'run(s) 1' in report.output


def test_backtest_a_config_on_the_simulators_candles_a_csv_or_the_exchange(workdir, sim):
    path = workdir / 'bot.toml'
    path.write_text(config_text(sim.base_url) + textwrap.dedent('''
    [[analyzers]]
    class = "SharpeRatio"
    params = { _name = "sharpe" }
    '''))
    result = invoke('backtest', path, '--bars', '300', '--plot', workdir / 'chart.png')
    assert result.exit_code == 0, result.output
    assert 'trades closed' in result.output and 'sharpe:' in result.output
    assert (workdir / 'chart.png').stat().st_size > 1000
    csv_path = workdir / 'candles.csv'
    lines = ['timestamp,open,high,low,close,volume']
    for i in range(48):         # two days of 1h candles, ISO timestamps: resampled to 4h
        price = 100.0 + (i % 7)
        lines.append('2024-01-%02dT%02d:00:00Z,%s,%s,%s,%s,1' % (
            1 + i // 24, i % 24, price, price + 1, price - 1, price))
    csv_path.write_text('\n'.join(lines) + '\n')
    four_hours = workdir / 'four.toml'
    four_hours.write_text(path.read_text().replace('timeframe = "1h"', 'timeframe = "4h"'))
    result = invoke('backtest', four_hours, '--csv', csv_path)
    assert result.exit_code == 0, result.output
    assert '48 (2024-01-01 00:00 .. 2024-01-02 23:00)' in result.output
    result = invoke('backtest', path, '--exchange', '--bars', '50')
    assert result.exit_code == 0 and 'candles' in result.output and '50 (' in result.output
    minute = workdir / 'minute.toml'
    minute.write_text(path.read_text().replace('timeframe = "1h"', 'timeframe = "1m"'))
    result = invoke('backtest', minute, '--bars', '10')
    assert result.exit_code == 2 and 'cannot be made from them' in result.output
    other = workdir / 'other.toml'
    other.write_text(path.read_text().replace('BTC/USDT', 'DOGE/USDT'))
    result = invoke('backtest', other)
    assert result.exit_code == 2 and 'give --csv FILE' in result.output
    csv_path.write_text('time,price\n1,2\n')
    result = invoke('backtest', path, '--csv', csv_path)
    assert result.exit_code == 2 and 'timestamp,open,high,low,close,volume' in result.output
    assert invoke('backtest', path, '--csv', workdir / 'none.csv').exit_code == 2


def test_the_backtest_feed_does_not_shadow_other_feeds_lines_classes():
    """backtrader registers each DataBase subclass's lines class by a name
    built from the class names: the CLI's feed, once named Rows like
    test_risk_kit's, replaced it and broke pickling (optimisation in worker
    processes, tests/test_backtest_compat.py)."""
    import importlib
    import pickle
    import backtrader_live.cli.backtest as module
    from test_risk_kit import Rows
    importlib.reload(module)        # the CLI's feed defined after the test's, as in a suite
    assert pickle.loads(pickle.dumps(Rows.lines)) is Rows.lines


PERMISSION_VENUES = ['binance-spot', 'binance-usdm', 'bybit-linear']
NO_TRADING = {'binance-spot': {'trading': False}, 'binance-usdm': {'futures': False},
              'bybit-linear': {'trading': False}}


@pytest.mark.parametrize('venue', PERMISSION_VENUES)
def test_check_reports_the_keys_permissions(workdir, venue):
    """The key's permissions as the exchange's documented route reports them:
    no trading rights for the market is a failed check (exit 1), withdrawals
    allowed a warning (exit 0)."""
    from venues import SETTLE, VENUES, exchange, market_type, venue_sim
    name, symbol = exchange(venue), VENUES[venue][2]
    with venue_sim(venue) as sim:
        path = workdir / 'bot.toml'
        path.write_text(config_text(sim.base_url).replace('"binance"', '"%s"' % name)
                        .replace('"BTC/USDT"', '"%s"' % symbol)
                        .replace('[live]\n', '[live]\nmarket_type = "%s"\n'
                                 % market_type(venue)))
        env = {name.upper() + '_API_KEY': KEY, name.upper() + '_API_SECRET': SECRET}
        result = invoke('check', path, env=env)
        assert result.exit_code == 0, result.output
        assert 'the key may trade %s' % ('spot' if venue.endswith('spot') else
                                         'linear') in result.output
        assert 'withdrawals disabled' in result.output and SETTLE[venue] in result.output
        sim.set_key_permissions(withdrawals=True)
        result = invoke('check', path, env=env)
        assert result.exit_code == 0, result.output
        assert 'key withdrawals' in result.output and 'may WITHDRAW funds' in result.output
        # Binance grants futures trading apart from spot's (enableFutures)
        sim.set_key_permissions(withdrawals=False, **NO_TRADING[venue])
        result = invoke('check', path, env=env)
        assert result.exit_code == 1, result.output
        assert 'may NOT trade' in result.output and 'withdrawals disabled' in result.output
