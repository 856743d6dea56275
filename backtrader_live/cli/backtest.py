"""``backtest CONFIG``: the config's strategy, sizer, analyzers and risk
limits on history (the simulator's candles, a CSV file, or the exchange),
with a progress bar, a summary and optionally the chart."""
import csv
import datetime

import backtrader as bt
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..config import load_config, setup_cerebro
from ..config.resolve import strategy_class
from ..errors import ConfigError
from ..sim.candles import INTERVAL_MS
from ..feeds.rows import CandleRowsFeed
from .common import out, user_errors

EPOCH = datetime.datetime(1970, 1, 1)


class ProgressAnalyzer(bt.Analyzer):
    params = (('progress', None), ('task', None), ('every', 200))

    def start(self):
        self._n = 0

    def next(self):
        self._n += 1
        if self._n % self.p.every == 0:
            self.p.progress.update(self.p.task, completed=self._n)


def read_csv(path):
    """Rows from a CSV with a header: timestamp (ms or ISO 8601, UTC), open,
    high, low, close, volume."""
    try:
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            return [(_ms(r['timestamp']), r['open'], r['high'], r['low'], r['close'],
                     r.get('volume') or 0.0) for r in reader]
    except OSError as exc:
        raise ConfigError('cannot read %s: %s' % (path, exc.strerror)) from None
    except (KeyError, ValueError) as exc:
        raise ConfigError('%s: a CSV with the columns timestamp,open,high,low,close,volume '
                          'is expected (%s: %s)' % (path, type(exc).__name__, exc)) from None


def _ms(text):
    text = text.strip()
    if text.isdigit():
        return int(text)
    parsed = datetime.datetime.fromisoformat(text.replace('Z', ''))
    return int((parsed.replace(tzinfo=None) - EPOCH).total_seconds() * 1000)


def simulator_rows(symbol):
    from ..sim.candles import DEFAULT_DATA, load_candles
    spot = symbol.split(':')[0]
    if spot not in DEFAULT_DATA:
        raise ConfigError('the simulator has candles for %s only; for %s give --csv FILE or '
                          '--exchange' % (', '.join(sorted(DEFAULT_DATA)), symbol))
    return load_candles(DEFAULT_DATA[spot])


def exchange_rows(cfg, limit):
    from ..cerebro import find_store
    live = cfg.live
    store = find_store(live.exchange).get_instance(testnet=live.testnet,
                                                   market_type=live.market_type,
                                                   endpoint=live.endpoint,
                                                   **cfg.options.store)
    try:
        return store.fetch_ohlcv(live.symbol, live.timeframe, limit=limit)
    finally:
        store.stop()


def add_data(cerebro, rows, timeframe):
    """Add ``rows`` as the config's timeframe: as they are, or resampled."""
    if len(rows) < 2:
        raise ConfigError('not enough candles to backtest (%d)' % len(rows))
    step = rows[1][0] - rows[0][0]
    wanted = INTERVAL_MS.get(timeframe)
    if wanted is None or wanted < step or wanted % step:
        raise ConfigError('the candles are %d-minute bars; [live] timeframe %r cannot be '
                          'made from them' % (step // 60000, timeframe))
    minutes = step // 60000
    data = CandleRowsFeed(rows=rows, timeframe=bt.TimeFrame.Minutes, compression=minutes)
    if wanted == step:
        cerebro.adddata(data)
    else:
        cerebro.resampledata(data, timeframe=bt.TimeFrame.Minutes,
                             compression=wanted // 60000)


def one_feed(live):
    """The backtest runs one symbol at one timeframe: a list is refused by name
    (live runs take lists: run CONFIG)."""
    for what in ('symbol', 'timeframe'):
        value = getattr(live, what)
        if not isinstance(value, str):
            raise ConfigError('backtest runs one feed: [live] %s is the list %r; give one %s '
                              '(lists of symbols/timeframes are for run CONFIG)'
                              % (what, value, what))


def backtest(config: str = typer.Argument(..., help='the config file (TOML)'),
             csv_file: str = typer.Option(None, '--csv', help='candles from this CSV '
                                          '(timestamp,open,high,low,close,volume)'),
             exchange: bool = typer.Option(False, '--exchange', help='candles from the '
                                           "exchange's REST API (the latest --bars)"),
             bars: int = typer.Option(None, help='only the last N candles'),
             commission: float = typer.Option(0.001, help='commission per trade (0.001: '
                                              '0.1 %)'),
             plot: str = typer.Option(None, help='write the chart to this PNG')):
    """Run the config's strategy on history; default data: the simulator's candles."""
    from .. import Cerebro
    with user_errors():
        loaded = load_config(config)
        cfg = loaded.config
        one_feed(cfg.live)
        rows = (read_csv(csv_file) if csv_file else exchange_rows(cfg, bars or 1000)
                if exchange else simulator_rows(cfg.live.symbol))
        rows = rows[-bars:] if bars else rows
        cerebro = Cerebro()
        add_data(cerebro, rows, cfg.live.timeframe)
        cerebro.broker.setcash(cfg.live.cash)
        cerebro.broker.setcommission(commission=commission)
        cerebro.addstrategy(strategy_class(cfg, loaded.base_dir), **cfg.strategy.params)
        setup_cerebro(cerebro, cfg.model_copy(update={'notifications': type(
            cfg.notifications)()}), loaded.base_dir)
        cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name='_trades')
        cerebro.addanalyzer(bt.analyzers.DrawDown, _name='_drawdown')
        with Progress(TextColumn('backtest'), BarColumn(), TextColumn('{task.completed}/'
                      '{task.total} bars'), TimeRemainingColumn(), transient=True) as bar:
            task = bar.add_task('bars', total=len(rows))
            cerebro.addanalyzer(ProgressAnalyzer, progress=bar, task=task)
            strat = cerebro.run()[0]
    summary(strat, cerebro, cfg, rows)
    if plot:
        from ..plotting import save_plot
        out.print('chart: %s' % save_plot(cerebro, plot))


def summary(strat, cerebro, cfg, rows):
    trades = strat.analyzers._trades.get_analysis()
    closed = trades.get('total', {}).get('closed', 0)
    won = trades.get('won', {}).get('total', 0)
    start, end = cfg.live.cash, cerebro.broker.getvalue()
    table = Table(title='backtest %s %s %s' % (cfg.strategy.class_, cfg.live.symbol,
                                               cfg.live.timeframe), show_header=False)
    for key, value in (
            ('candles', '%d (%s .. %s)' % (len(rows), _date(rows[0][0]), _date(rows[-1][0]))),
            ('start value', '%.2f' % start), ('end value', '%.2f' % end),
            ('return', '%.2f %%' % ((end / start - 1) * 100)),
            ('trades closed', str(closed)), ('won', str(won)),
            ('pnl net', '%.2f' % trades.get('pnl', {}).get('net', {}).get('total', 0.0)),
            ('max drawdown', '%.2f %%' % strat.analyzers._drawdown.get_analysis()
             ['max']['drawdown'])):
        table.add_row(key, value)
    out.print(table)
    for name, analyzer in strat.analyzers.getitems():
        if name.startswith('_') or isinstance(analyzer, ProgressAnalyzer):
            continue
        out.print('%s: %s' % (name, _plain(analyzer.get_analysis())), markup=False)


def _plain(value):
    """backtrader's AutoOrderedDicts as plain dicts, floats shortened."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    return value


def _date(ms):
    return (EPOCH + datetime.timedelta(milliseconds=ms)).strftime('%Y-%m-%d %H:%M')
