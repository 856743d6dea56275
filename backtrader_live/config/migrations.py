"""Older config file formats, upgraded one version at a time.

Version 0 (documented in docs/config.md) is the shape of a ``run_live`` call
written as TOML: every key at the top level, as run_live takes them::

    exchange = "binance"
    symbol = "BTC/USDT"
    timeframe = "1h"
    strategy = "samples/sma_cross.py:SmaCross"   # strategy_cls
    cash = 1000.0
    fast = 5                                    # a flat option: routed by name
    store_kwargs = { recv_window = 5000 }

Version 1 groups them ([live], [strategy], [options.*]); a flat option is
routed to its component by the same code run_live uses (options.route), so
the migration needs the strategy class to know which names are its params.

Each step is ``(from_version, function(data, context) -> (data, changes))``;
``changes`` are the sentences ``config migrate`` prints.
"""
from ..errors import ConfigError
from ..options import DICT_OF
from .schema import VERSION, live_parameters

_EXPLICIT = {v: k for k, v in DICT_OF.items()}       # 'store_kwargs' -> 'store'


def _v0_to_v1(data, context):
    data = dict(data)
    changes = []
    live_names = [p.name for p in live_parameters()]
    new = {'version': 1, 'live': {}, 'strategy': {}, 'options': {}}
    for name in live_names:
        if name in data:
            new['live'][name] = data.pop(name)
            changes.append('%s -> [live] %s' % (name, name))
    if 'strategy' not in data:
        raise ConfigError("version 0 config: 'strategy' (the strategy class, "
                          "'package.module:Class') is missing")
    new['strategy']['class'] = data.pop('strategy')
    changes.append('strategy -> [strategy] class')
    for key, kind in _EXPLICIT.items():
        if key in data:
            value = data.pop(key)
            if kind == 'strategy':
                new['strategy']['params'] = dict(value)
            else:
                new['options'][kind] = dict(value)
            changes.append('%s -> [%s]' % (key, 'strategy.params' if kind == 'strategy'
                                               else 'options.' + kind))
    for section in ('sizer', 'analyzers', 'risk', 'notifications', 'journal', 'secrets'):
        if section in data:        # these already had their v1 shape
            new[section] = data.pop(section)
    for key in ('apikey', 'secret'):      # only "${VAR}" gets this far (refuse_secrets)
        if key in data:
            new.setdefault('secrets', {})[key] = data.pop(key)
            changes.append('%s -> [secrets] %s' % (key, key))
    if data:
        _route_flat(data, new, context, changes)
    return new, changes


def _route_flat(flat, new, context, changes):
    """Flat options to their component, exactly as run_live(**flat) would."""
    from ..cerebro import Cerebro, find_store
    from .resolve import load_class
    exchange = new['live'].get('exchange')
    if exchange is None:
        raise ConfigError("version 0 config: 'exchange' is missing")
    strategy_cls = load_class(new['strategy']['class'], context.get('base_dir'))
    empty = {kind: {} for kind in DICT_OF}
    parts = Cerebro()._route_options(find_store(exchange), strategy_cls, flat, empty)
    for kind, values in parts.items():
        for key, value in values.items():
            if kind == 'strategy':
                new['strategy'].setdefault('params', {})[key] = value
                changes.append('%s -> [strategy.params] %s' % (key, key))
            else:
                new['options'].setdefault(kind, {})[key] = value
                changes.append('%s -> [options.%s] %s' % (key, kind, key))


STEPS = {0: _v0_to_v1}


def migrate(data, context=None):
    """``(data at VERSION, changes)``; refuses versions newer than this code's."""
    context = context or {}
    version = data.get('version', 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ConfigError('version must be an integer from 0 to %d, got %r'
                          % (VERSION, version))
    if version > VERSION:
        raise ConfigError('this config is version %d, newer than this backtrader_live '
                          'understands (%d): upgrade backtrader_live' % (version, VERSION))
    changes = []
    while version < VERSION:
        data, done = STEPS[version](data, context)
        changes += ['v%d->v%d: %s' % (version, version + 1, c) for c in done]
        version += 1
    return data, changes
