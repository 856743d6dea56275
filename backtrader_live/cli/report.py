"""``report JOURNAL``: trades, PnL, fees, drawdown and a per-symbol breakdown
from a journal (read-only: safe while the bot writes); CSV/JSON export, an
equity PNG and an HTML tear-sheet (journal/tearsheet.py)."""
import csv
import datetime
import json
import os

import typer
from rich.table import Table

from ..journal.tearsheet import equity_png, figure, write_tearsheet
from .common import out, user_errors


def _date(text):
    if text is None:
        return None
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        from ..errors import ConfigError
        raise ConfigError('dates are ISO 8601 (2024-05-01 or 2024-05-01T12:00), got %r'
                          % text) from None


def report(journal: str = typer.Argument(..., help='journal URL or SQLite file'),
           run: int = typer.Option(None, help='run id (default: the latest run)'),
           since: str = typer.Option(None, help='from this UTC date/time (ISO 8601)'),
           until: str = typer.Option(None, help='before this UTC date/time (ISO 8601)'),
           csv_dir: str = typer.Option(None, '--csv', help='write trades.csv, fills.csv, '
                                       'equity.csv and symbols.csv in this directory'),
           json_file: str = typer.Option(None, '--json', help='write everything as JSON'),
           png: str = typer.Option(None, '--png', help='write the equity curve to this PNG'),
           html_file: str = typer.Option(None, '--html', help='write a self-contained HTML '
                                         'tear-sheet (figures, equity chart, trades)'),
           list_runs: bool = typer.Option(False, '--runs', help='list the runs and stop')):
    """Report a run (or the runs in a date range) from its journal."""
    from ..journal import open_engine
    from ..journal.report import jsonable, runs, summarize
    with user_errors():
        engine = open_engine(journal, readonly=True)
        try:
            if list_runs:
                _print_runs(runs(engine))
                return
            result = summarize(engine, run, _date(since), _date(until))
        finally:
            engine.dispose()
    _print(result)
    if csv_dir:
        _write_csv(csv_dir, result)
        out.print('wrote CSV files in %s' % csv_dir)
    if json_file:
        with open(json_file, 'w') as f:
            json.dump(jsonable(result), f, indent=1)
        out.print('wrote %s' % json_file)
    if png:
        equity_png(result, png)
        out.print('wrote %s' % png)
    if html_file:
        write_tearsheet(result, html_file)
        out.print('wrote %s' % html_file)


def _print_runs(every):
    table = Table(title='runs')
    for column in ('id', 'started', 'ended', 'status', 'exchange', 'symbols', 'paper'):
        table.add_column(column)
    for r in every:
        table.add_row(str(r['id']), str(r['started_at']), str(r['ended_at'] or ''),
                      r['status'], r['exchange'] or '', r['symbols'] or '', str(r['paper']))
    out.print(table)


def _fmt(value):
    return figure(value, 6)


def _print(result):
    s = result['summary']
    table = Table(title='run(s) %s' % ', '.join(map(str, s['runs'])), show_header=False)
    for key in ('first_bar', 'last_bar', 'bars', 'trades', 'won', 'win_rate', 'pnl',
                'pnl_net', 'fees', 'fills', 'start_equity', 'end_equity', 'return',
                'max_drawdown', 'annual_return', 'annual_volatility', 'sharpe', 'sortino',
                'note'):
        if key in s:
            table.add_row(key, _fmt(s[key]))
    out.print(table)
    symbols = Table(title='per symbol')
    for column in ('symbol', 'trades', 'pnl_net', 'fills', 'volume', 'fees'):
        symbols.add_column(column)
    for row in result['symbols']:
        symbols.add_row(*(_fmt(row[c]) for c in ('symbol', 'trades', 'pnl_net', 'fills',
                                                 'volume', 'fees')))
    out.print(symbols)


def _write_csv(folder, result):
    os.makedirs(folder, exist_ok=True)
    for name in ('trades', 'fills', 'equity', 'symbols'):
        rows = result[name]
        with open(os.path.join(folder, name + '.csv'), 'w', newline='') as f:
            if not rows:
                continue
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
