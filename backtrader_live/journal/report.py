"""What a journal says about a run: trades, PnL, fees, drawdown, per symbol.

Reads through a read-only connection, so it works while the bot writes.
"""
import collections
import datetime

from sqlalchemy import and_, select

from . import tables as t
from .database import JournalError


def runs(engine):
    with engine.connect() as conn:
        return [r._asdict() for r in conn.execute(select(t.runs).order_by(t.runs.c.id))]


def _where(table, run_ids, since, until, column='at'):
    cond = [table.c.run_id.in_(run_ids)]
    if since is not None and column in table.c:
        cond.append(table.c[column] >= since)
    if until is not None and column in table.c:
        cond.append(table.c[column] < until)
    return and_(*cond)


def fetch(engine, table, run_ids, since=None, until=None, column='at'):
    tab = t.metadata.tables[table]
    with engine.connect() as conn:
        query = select(tab).where(_where(tab, run_ids, since, until, column)).order_by(tab.c.id)
        return [r._asdict() for r in conn.execute(query)]


def choose_runs(engine, run=None, since=None, until=None):
    """Run ids: the one asked for, else the runs overlapping the dates, else the latest."""
    every = runs(engine)
    if not every:
        raise JournalError('the journal holds no run yet')
    if run is not None:
        if run not in {r['id'] for r in every}:
            raise JournalError('run %s is not in the journal; runs: %s'
                               % (run, ', '.join(str(r['id']) for r in every)))
        return [run]
    if since is None and until is None:
        return [every[-1]['id']]
    return [r['id'] for r in every
            if (until is None or r['started_at'] < until)
            and (since is None or r['ended_at'] is None or r['ended_at'] >= since)]


#: periods per year of a timeframe (crypto trades every day, all day)
YEAR_MS = 365 * 24 * 3600 * 1000


def statistics(values, timeframe):
    """Performance statistics of an equity series, from empyrical (a library
    made for them), annualised for ``timeframe``'s bars; ``{}`` without
    empyrical (pip install backtrader-live[report]) or with < 3 bars."""
    try:
        import empyrical
        import numpy
    except ImportError:
        return {'note': 'install backtrader-live[report] (empyrical) for Sharpe, Sortino, '
                        'volatility and annual return'}
    if len(values) < 3:
        return {}
    from ..sim.candles import INTERVAL_MS
    equity = numpy.asarray(values, dtype=float)
    returns = equity[1:] / equity[:-1] - 1.0
    year = YEAR_MS / INTERVAL_MS.get(timeframe or '1h', INTERVAL_MS['1h'])
    found = {
        'max_drawdown': -float(empyrical.max_drawdown(returns)),
        'annual_return': float(empyrical.annual_return(returns, annualization=year)),
        'annual_volatility': float(empyrical.annual_volatility(returns,
                                                               annualization=year)),
        'sharpe': float(empyrical.sharpe_ratio(returns, annualization=year)),
        'sortino': float(empyrical.sortino_ratio(returns, annualization=year)),
    }
    return {k: (None if v != v or v in (float('inf'), float('-inf')) else v)
            for k, v in found.items()}


def summarize(engine, run=None, since=None, until=None):
    """``{'runs', 'summary', 'symbols', 'trades', 'fills', 'equity'}``."""
    ids = choose_runs(engine, run, since, until)
    trades = fetch(engine, 'trades', ids, since, until, 'closed_at')
    fills = fetch(engine, 'fills', ids, since, until)
    equity = fetch(engine, 'equity', ids, since, until)
    values = [e['value'] for e in equity]
    timeframe = next((r['timeframe'] for r in runs(engine) if r['id'] in ids), None)
    wins = [tr for tr in trades if (tr['pnlcomm'] or 0) > 0]
    summary = {
        'runs': ids, 'trades': len(trades), 'won': len(wins),
        'win_rate': len(wins) / len(trades) if trades else None,
        'pnl': sum(tr['pnl'] or 0 for tr in trades),
        'pnl_net': sum(tr['pnlcomm'] or 0 for tr in trades),
        'fees': sum(f['comm'] or 0 for f in fills), 'fills': len(fills),
        'start_equity': values[0] if values else None,
        'end_equity': values[-1] if values else None,
        'return': (values[-1] / values[0] - 1) if values and values[0] else None,
        'bars': len(values),
        'first_bar': equity[0]['at'] if equity else None,
        'last_bar': equity[-1]['at'] if equity else None,
    }
    summary.update(statistics(values, timeframe))
    return {'summary': summary, 'symbols': per_symbol(trades, fills), 'trades': trades,
            'fills': fills, 'equity': equity}


def per_symbol(trades, fills):
    rows = collections.OrderedDict()

    def row(symbol):
        return rows.setdefault(symbol or '?', {'symbol': symbol or '?', 'trades': 0,
                                               'pnl_net': 0.0, 'fills': 0, 'volume': 0.0,
                                               'fees': 0.0})
    for fill in fills:
        r = row(fill['symbol'])
        r['fills'] += 1
        r['volume'] += abs(fill['size'] * fill['price'])
        r['fees'] += fill['comm'] or 0.0
    for trade in trades:
        r = row(trade['symbol'])
        r['trades'] += 1
        r['pnl_net'] += trade['pnlcomm'] or 0.0
    return list(rows.values())


def jsonable(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
