"""``check CONFIG``: the config, and with keys the account and the market."""
import os

import typer
from rich.markup import escape
from rich.table import Table

from ..config import check_options, load_config, read_secrets
from ..errors import ConfigError, LiveError
from ..multifeed import as_names
from .common import out, user_errors
from .permissions import permission_checks

OK, WARN, FAIL = 'ok', 'warn', 'FAIL'
STYLE = {OK: 'green', WARN: 'yellow', FAIL: 'bold red'}


def check(config: str = typer.Argument(..., help='the config file (TOML)'),
          connect: bool = typer.Option(None, help='also ask the exchange (default: when '
                                       'keys are available, or an endpoint is set)'),
          endpoint: str = typer.Option(None, help='override [live] endpoint')):
    """Validate the config; connect and check the account and market rules.
    Exit code: 0 fine (warnings allowed), 1 a check failed, 2 the config is invalid."""
    with user_errors():
        loaded = load_config(config)
    cfg = loaded.config
    if endpoint:
        cfg = cfg.model_copy(update={'live': cfg.live.model_copy(update={'endpoint': endpoint})})
    findings = [('config', OK, '%s, version %d%s' % (config, cfg.version, (
        ' (migrated from an older version: backtrader-live config migrate)'
        if loaded.changes else '')))]
    findings += offline_checks(cfg, loaded)
    credentials = _credentials(loaded, cfg, findings)
    if connect or (connect is None and (credentials[0] or cfg.live.endpoint)):
        findings += exchange_checks(cfg, credentials)
    table = Table(title='backtrader-live check %s' % config)
    for column in ('check', 'result', 'detail'):
        table.add_column(column)
    for name, result, detail in findings:
        table.add_row(escape(name), '[%s]%s[/]' % (STYLE[result], result), escape(detail))
    out.print(table)
    raise typer.Exit(1 if any(f[1] == FAIL for f in findings) else 0)


def offline_checks(cfg, loaded):
    found = []
    try:
        check_options(cfg, loaded.base_dir)
        found.append(('strategy and options', OK, '%s; option keys valid for %s'
                      % (cfg.strategy.class_, cfg.live.exchange)))
    except ConfigError as exc:
        found.append(('strategy and options', FAIL, str(exc)))
    if cfg.journal.enabled:
        found.append(_journal_check(cfg, loaded))
    if not cfg.live.paper_trading and not cfg.live.testnet:
        found.append(('mode', WARN, 'REAL MONEY: paper_trading = false and testnet = false'))
    else:
        found.append(('mode', OK, 'paper trading' if cfg.live.paper_trading else 'testnet'))
    return found


def _journal_check(cfg, loaded):
    from ..journal import resolve_url
    try:
        url = resolve_url(cfg.journal.url, loaded.base_dir)
    except ConfigError as exc:
        return ('journal', FAIL, str(exc))
    if url.get_backend_name() == 'sqlite':
        folder = os.path.dirname(url.database) or '.'
        if not os.access(folder, os.W_OK):
            return ('journal', FAIL, 'cannot write in %s' % folder)
    return ('journal', OK, url.render_as_string(hide_password=True))


def _credentials(loaded, cfg, findings):
    try:
        apikey, secret = read_secrets(loaded)
    except ConfigError as exc:
        findings.append(('keys', FAIL, str(exc)))
        return None, None
    prefix = cfg.live.exchange.upper().replace(':', '_')
    if apikey:
        findings.append(('keys', OK, 'from %s' % (cfg.secrets.file or 'the environment '
                                                 'variables named in [secrets]')))
    elif os.environ.get(prefix + '_API_KEY') and os.environ.get(prefix + '_API_SECRET'):
        apikey, secret = os.environ[prefix + '_API_KEY'], os.environ[prefix + '_API_SECRET']
        findings.append(('keys', OK, 'from %s_API_KEY / %s_API_SECRET' % (prefix, prefix)))
    else:
        findings.append(('keys', WARN, 'none (%s_API_KEY / %s_API_SECRET or [secrets] file): '
                         'account checks skipped' % (prefix, prefix)))
    return apikey, secret


def exchange_checks(cfg, credentials):
    from ..cerebro import find_store
    live = cfg.live
    found = []
    try:
        store = find_store(live.exchange).get_instance(
            apikey=credentials[0], secret=credentials[1], testnet=live.testnet,
            market_type=live.market_type, endpoint=live.endpoint, **cfg.options.store)
    except (ConfigError, LiveError) as exc:
        return [('connection', FAIL, str(exc))]
    try:
        found += _ask(store, live, credentials)
    finally:
        store.stop()
    return found


def _ask(store, live, credentials):
    found = []
    if not store.test_connection():
        return [('connection', FAIL, store.connection_error)]
    found.append(('connection', OK, '%s answers%s' % (live.exchange, ' and accepts the keys'
                                                      if credentials[0] else '')))
    for symbol in as_names('symbol', live.symbol):      # one or a list of them
        try:
            rules = store.market_rules(symbol)
            found.append(('market %s' % symbol, OK, 'amount step %s, min amount %s, '
                          'price tick %s, min notional %s' % (
                              rules.amount_step, rules.min_amount, rules.price_tick,
                              rules.min_notional)))
        except (ConfigError, LiveError) as exc:
            found.append(('market %s' % symbol, FAIL, str(exc)))
    try:
        store.sync_time()
        skew = abs(store.exchange.options.get('timeDifference') or 0)
        limit = store.recv_window_ms / 2
        found.append(('clock', OK if skew < limit else WARN, 'offset to the server %d ms '
                      '(recv window %d ms)' % (skew, store.recv_window_ms)))
    except LiveError as exc:
        found.append(('clock', WARN, str(exc)))
    if credentials[0]:
        try:
            held = {k: v['total'] for k, v in store.get_balance().items() if v['total']}
            found.append(('balances', OK if held else WARN, ', '.join(
                '%s %.8g' % kv for kv in sorted(held.items())) or 'empty account'))
        except LiveError as exc:
            found.append(('balances', FAIL, str(exc)))
        found += permission_checks(store, live.exchange)
    return found
