"""Several symbols and timeframes in one ``run_live``: what to build, checked first.

``run_live('binance', ['BTC/USDT', 'ETH/USDT'], ['1h', '4h'], ...)`` makes
one feed per (timeframe, symbol), all on one store (one exchange account,
one market type) and one market-data socket. Every argument is checked
before anything connects or starts, and every bad value is named:

- a symbol the exchange does not list (with the closest listed one), or a
  symbol of another market type than ``market_type`` (one run trades one
  market type: the broker trades through one account);
- a symbol or a timeframe given twice;
- a timeframe the exchange does not serve (the valid ones are listed).

``cerebro.resampledata(live_feed, timeframe=..., compression=...)`` on a
live feed gives a feed of the exchange's own bars of that timeframe (a
closed 4h kline is exactly the four 1h klines it spans), delivered when the
bar has closed, never a forming one: :func:`resampled_feed`.
"""
import difflib
import math

from backtrader import TimeFrame

from .errors import ConfigError
from .markets import EXAMPLE_SYMBOLS, INVERSE, LINEAR, SPOT, kind_of
from .timeframes import TIMEFRAME_SPECS, parse_timeframe


def as_names(what, value):
    """``value`` (a string or a list/tuple of strings) as a list, no duplicates."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names or not all(
            isinstance(n, str) and n for n in names):
        raise ConfigError('%s must be a non-empty string or a non-empty list of strings, '
                          'got %r' % (what, value))
    seen = set()
    for name in names:
        if name in seen:
            raise ConfigError('%s %r given twice in %r: each feed is given once'
                              % (what, name, list(names)))
        seen.add(name)
    return list(names)


def check_timeframes(timeframes, supported):
    """The timeframe names, each one the exchange serves."""
    names = as_names('timeframe', timeframes)
    for name in names:
        parse_timeframe(name, supported)     # ConfigError listing the valid ones
    return names


def check_symbols(store, symbols):
    """Every symbol is a market of the store's market type: else one
    ConfigError naming each bad symbol (and the closest valid one)."""
    markets = store.get_markets()
    own = sorted(s for s, m in markets.items() if kind_of(m) == store.kind)
    problems = []
    where = '%s %s' % (store.exchange_name, store.p.market_type)
    for symbol in symbols:
        market = markets.get(symbol)
        kind = kind_of(market) if market is not None else looks_like(symbol)
        if kind != store.kind:
            problems.append(
                'unknown symbol %r on %s (%r looks like a %s symbol; %s symbols look like %r): '
                'one run trades one market type (the broker trades through one account); '
                'run each market type in its own Cerebro'
                % (symbol, where, symbol, kind, store.kind, EXAMPLE_SYMBOLS[store.kind]))
        elif market is None:
            close = difflib.get_close_matches(symbol, own, n=1, cutoff=0.6)
            problems.append('unknown symbol %r on %s%s' % (
                symbol, where, " (did you mean '%s'?)" % close[0] if close else ''))
    if problems:
        raise ConfigError('%s; e.g. %s' % ('; '.join(problems), ', '.join(own[:10])))
    return symbols


def looks_like(symbol):
    """The market kind a ccxt symbol's shape says: 'BTC/USDT' spot,
    'BTC/USDT:USDT' linear, 'BTC/USD:BTC' inverse (settled in the base)."""
    if ':' not in symbol:
        return SPOT
    settle, base = symbol.split(':')[1], symbol.split('/')[0]
    return INVERSE if settle == base else LINEAR


def history_bars(backfill_bars, base_tf, tf):
    """Bars of history for a feed of ``tf`` spanning ``backfill_bars`` of the
    shortest timeframe ``base_tf`` (the same span; a longer history could not
    be delivered: upstream's loop needs a base bar in every round)."""
    if not backfill_bars:
        return 0
    return int(math.ceil(backfill_bars * TIMEFRAME_SPECS[base_tf][2]
                         / float(TIMEFRAME_SPECS[tf][2])))


def plan(symbols, timeframes, single_names=True):
    """[(symbol, timeframe, name)] in the order of ``cerebro.datas``: every
    symbol of the first timeframe first (data0 is the first symbol at the
    first timeframe), then the next timeframe's. A feed is named after its
    symbol, with ' <timeframe>' when there are several timeframes."""
    several = len(timeframes) > 1
    return [(s, tf, '%s %s' % (s, tf) if several else s)
            for tf in timeframes for s in symbols]


# -- cerebro.resampledata / replaydata on a live feed ----------------------------------------
_TARGET_KEYS = ('timeframe', 'compression')


def requested(data, kwargs, call, why):
    """(timeframe, compression, [names]) that ``call(data, **kwargs)``
    (resampledata, replaydata) asks for; any other keyword is refused with
    ``why`` (what the live feed does instead of upstream's options)."""
    extra = sorted(set(kwargs) - set(_TARGET_KEYS))
    if extra:
        raise ConfigError('%s on a live feed takes timeframe= and compression= only (%s), '
                          'not %s' % (call, why, ', '.join(extra)))
    timeframe = kwargs.get('timeframe', data.p.timeframe)
    compression = kwargs.get('compression', 1)
    return timeframe, compression, [n for n, spec in TIMEFRAME_SPECS.items()
                                    if spec[:2] == (timeframe, compression)]


def target_timeframe(data, kwargs):
    """The exchange timeframe name ('4h') ``resampledata(data, **kwargs)`` asks for."""
    timeframe, compression, names = requested(
        data, kwargs, 'resampledata', "the exchange's closed bars of that timeframe are used")
    supported = getattr(data._store, 'TIMEFRAMES', None)
    valid = [n for n in TIMEFRAME_SPECS if supported is None or n in supported]
    if not names or names[0] not in valid:
        raise ConfigError(
            'resampledata(timeframe=%s, compression=%r) on a live feed: not a timeframe '
            '%s serves; valid: %s (TimeFrame.Minutes with compression 60 is 1h)'
            % (TimeFrame.getname(timeframe, compression) if timeframe in
               TimeFrame.Names[1:] else timeframe, compression,
               getattr(data._store, 'exchange_name', 'the exchange'), ', '.join(valid)))
    name = names[0]
    source_ms, target_ms = data._tf_ms, TIMEFRAME_SPECS[name][2]
    if target_ms < source_ms or (target_ms % source_ms and name != '1M'):
        raise ConfigError('resampledata: %s is not a multiple of the feed\'s %s; longer '
                          'timeframes that are: %s' % (name, data.p.tf, ', '.join(
                              n for n in valid if TIMEFRAME_SPECS[n][2] >= source_ms and
                              (n == '1M' or TIMEFRAME_SPECS[n][2] % source_ms == 0))))
    return name


def resampled_feed(data, kwargs):
    """A new live feed of ``data``'s symbol at the timeframe ``kwargs`` ask
    for, on the same store, with the same parameters otherwise."""
    name = target_timeframe(data, kwargs)
    params = dict(data.p._getkwargs())
    for key in ('timeframe', 'compression', 'name'):
        params.pop(key, None)
    params['tf'] = name
    params['backfill_bars'] = history_bars(data.p.backfill_bars, data.p.tf, name)
    feed = type(data)(**params)
    feed._store = data._store
    return feed


# -- orders: one feed per symbol carries them ---------------------------------------------
def guard_orders(broker, datas):
    """With several feeds of one symbol (two timeframes) on a live broker,
    refuse orders on any but the symbol's first feed, by name: the exchange
    keeps one position per symbol and backtrader one per data, so the
    broker checks the exchange's against the first feed's; an order on
    another would leave two positions for one."""
    rules = getattr(broker, 'risk_rules', None)
    if rules is None:
        return
    rules[:] = [r for r in rules if getattr(r, '__name__', '') != _RULE_NAME]
    first = {}
    for data in datas:
        if getattr(data, '_store', None) is not None and hasattr(data, '_tf_ms'):
            first.setdefault(data.p.dataname, data)
    others = {id(d): first[d.p.dataname] for d in datas
              if d.p.dataname in first and first[d.p.dataname] is not d}
    if not others:
        return

    def rule(order):
        carrier = others.get(id(order.data))
        if carrier is None or not getattr(broker, 'live', False):
            return None
        if carrier._name:
            how = 'self.getdatabyname(%r)' % carrier._name
        else:
            how = 'self.datas[%d]' % next(i for i, d in enumerate(datas) if d is carrier)
        return ('orders on %s go through its first feed %r: the exchange keeps one '
                'position per symbol and backtrader one per data; use self.buy(data=%s)'
                % (order.data.p.dataname, carrier._name or how, how))
    rule.__name__ = _RULE_NAME
    rules.append(rule)


_RULE_NAME = 'rule_first_feed_of_symbol'
