"""``run CONFIG``: a live (paper/testnet by default) run from a config file,
journaled, with a one-line status per live bar."""
import logging
import sys

import backtrader as bt
import typer

from ..config import load_config, read_secrets, run_live_arguments, setup_cerebro
from ..multifeed import as_names
from .common import err, setup_logging, user_errors

log = logging.getLogger('backtrader_live.cli')


class Status(bt.Analyzer):
    """One line per live bar: time, price, position, equity, open orders,
    stream health. Rich on a terminal, a plain log line otherwise."""

    params = (('console', None),)

    def next(self):
        data = self.strategy.data
        if data._laststatus != data.LIVE:
            return
        broker = self.strategy.broker
        opened = getattr(broker, 'get_orders_open', lambda: [])()
        store = getattr(data, '_store', None) or getattr(getattr(data, 'p', None), 'store',
                                                         None)
        healthy = getattr(store, 'is_connected', True)
        fields = (data.datetime.datetime(0).strftime('%Y-%m-%d %H:%M'), data._name,
                  data.close[0], self.strategy.position.size, broker.getvalue(), len(opened),
                  'ok' if healthy else 'DOWN')
        if self.p.console is not None:
            self.p.console.print(
                '[bold]%s[/] %s close [cyan]%.8g[/] position %.8g equity [green]%.2f[/] '
                'open orders %d stream %s' % fields)
        else:
            log.info('bar %s %s close %.8g position %.8g equity %.2f open_orders %d '
                     'stream %s', *fields)


def run(config: str = typer.Argument(..., help='the config file (TOML)'),
        endpoint: str = typer.Option(None, help='override [live] endpoint (e.g. a simulator)'),
        max_bars: int = typer.Option(None, help='stop after this many live bars'),
        duration: float = typer.Option(None, help='stop after this many seconds'),
        journal: bool = typer.Option(True, help='record the run in [journal] url'),
        new_run: bool = typer.Option(False, help='start a new run even if the last run of '
                                     'this config did not stop (crashed)'),
        verbose: bool = typer.Option(False, '--verbose', '-v', help="the library's INFO logs")):
    """Trade as the config says (paper trading on the testnet unless it says otherwise);
    Ctrl-C stops cleanly (a second Ctrl-C at once)."""
    setup_logging(verbose)
    with user_errors():
        loaded = load_config(config)
        for change in loaded.changes:
            log.warning('config %s is an older version, migrated in memory: %s '
                        '(backtrader-live config migrate %s)', config, change, config)
        cfg = loaded.config
        updates = {k: v for k, v in dict(endpoint=endpoint, max_bars=max_bars,
                                         duration=duration).items() if v is not None}
        if updates:
            cfg = cfg.model_copy(update={'live': cfg.live.model_copy(update=updates)})
        credentials = read_secrets(loaded)
        args, kwargs = run_live_arguments(cfg, loaded.base_dir,
                                          credentials if credentials[0] else None)
        from .. import Cerebro
        cerebro = Cerebro()
        setup_cerebro(cerebro, cfg, loaded.base_dir)
        cerebro.addanalyzer(Status, console=err if sys.stderr.isatty() else None)
        recorder = _open_journal(cfg, loaded, cerebro, args, kwargs, new_run) \
            if journal and cfg.journal.enabled else None
    status = 'failed'
    try:
        with user_errors():
            cerebro.run_live(*args, **kwargs)
        status = 'stopped'
    except KeyboardInterrupt:
        status = 'interrupted'
        raise typer.Exit(130)
    finally:
        if recorder is not None:
            recorder.close(status)
            log.info('journal: run %s %s', recorder.run_id, status)


def _open_journal(cfg, loaded, cerebro, args, kwargs, new_run):
    """Open the journal, continue this config's crashed run if there is one
    (reconciled with the exchange first), and attach it to ``cerebro``."""
    import os
    from ..journal import Journal, attach
    from ..journal.recovery import reconcile, unfinished_run
    journal = Journal.open(cfg.journal.url, loaded.base_dir, cfg.journal.queue_size)
    live = cfg.live
    name = os.path.abspath(loaded.path)
    try:
        resume = None if new_run else unfinished_run(journal.engine, name)
        journal.start_run(exchange=live.exchange, symbols=as_names('symbol', live.symbol),
                          timeframe=bar_timeframe(live.timeframe), paper=live.paper_trading,
                          config=cfg.model_dump(mode='json', by_alias=True), name=name,
                          resume=resume)
        if resume is not None:
            log.warning('run %s did not stop (the process died): continuing it as session '
                        '%d', resume, journal.session)
            if not live.paper_trading:
                reconcile(journal, _store(args, kwargs), live.exchange)
    except BaseException:
        journal.close('failed' if journal.run_id else 'stopped')
        raise
    attach(cerebro, journal, exchange=live.exchange)
    return journal


def bar_timeframe(timeframe):
    """The run's bar: with several timeframes the shortest, which drives the
    strategy's next() and so the journal's equity rows (the report annualises
    by it); all of them stay in the run's recorded config."""
    from ..timeframes import TIMEFRAME_SPECS
    names = as_names('timeframe', timeframe)
    return min(names, key=lambda n: TIMEFRAME_SPECS.get(n, (None, None, 0))[2])


def _store(args, kwargs):
    """The store run_live will use (get_instance returns the same one)."""
    from ..cerebro import find_store
    return find_store(args[0]).get_instance(
        apikey=kwargs.get('apikey'), secret=kwargs.get('secret'), testnet=kwargs['testnet'],
        market_type=kwargs['market_type'], endpoint=kwargs['endpoint'],
        **kwargs['store_kwargs'])
