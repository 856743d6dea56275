"""Keyword arguments go where they belong, or are refused by name: never dropped.

``run_live(..., recv_window=5000, leverage=3, exactbars=1, fast=5)`` takes flat
keyword arguments and hands each to the one component that has a parameter of
that name (the store, the broker, the data feed, the strategy, or
``Cerebro.run``). A name nobody has is a :class:`ConfigError` naming the
closest valid option and listing the valid ones; a name two components share
is refused too, with the explicit dictionaries (``store_kwargs=``,
``broker_kwargs=``, ``data_kwargs=``, ``strategy_params=``, ``run_kwargs=``)
as the way to say which one is meant. The same check applies to the keys of
those dictionaries, so a typo there is not a raw ``TypeError`` either.
"""
import difflib
import inspect

from .errors import ConfigError

#: where a flat name goes when two components have it (why: backtrader's own
#: meaning for the whole run is the one a run_live caller means)
PREFERRED = {'tz': 'run'}

#: the explicit dictionary of each component, for messages
DICT_OF = {'store': 'store_kwargs', 'broker': 'broker_kwargs', 'data': 'data_kwargs',
           'strategy': 'strategy_params', 'run': 'run_kwargs'}


def param_names(cls):
    """The names of a backtrader class's ``params`` (strategies, brokers...)."""
    params = getattr(cls, 'params', None)
    keys = getattr(params, '_getkeys', None)
    return tuple(keys()) if callable(keys) else ()


def _init_parameters(cls):
    try:
        return inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):     # a C-level __init__: no named arguments
        return ()


def init_names(cls):
    """Named arguments of ``cls.__init__`` (backtrader hands a strategy the
    keyword arguments that are not params)."""
    return tuple(p.name for p in _init_parameters(cls) if p.name != 'self'
                 and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def takes_any_keyword(cls):
    """True if the user's ``cls.__init__`` has ``**kwargs``: then any name may be
    meant. backtrader's own ``__init__`` takes ``**kwargs`` and drops them,
    which is exactly the silence this module is here to prevent."""
    module = getattr(cls.__init__, '__module__', '') or ''
    if module.split('.')[0] in ('backtrader', 'backtrader_live'):
        return False
    return any(p.kind == p.VAR_KEYWORD for p in _init_parameters(cls))


def closest(name, valid):
    """' (did you mean 'x'?)' for the nearest valid name, or ''."""
    match = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.6)
    return " (did you mean '%s'?)" % match[0] if match else ''


def check_keys(what, given, valid):
    """Refuse keys of ``given`` that ``valid`` lacks (runconfig.check_options
    does the same for classes whose keys run_live partly sets itself)."""
    for key in given or ():
        if key not in valid:
            raise ConfigError('%s: unknown option %r%s; valid options: %s'
                              % (what, key, closest(key, valid), ', '.join(sorted(valid))))


def route(flat, owners, own=()):
    """Split ``flat`` keyword arguments by owner.

    ``owners``: ``{kind: names}`` (kinds of :data:`DICT_OF`); ``own``: the
    caller's own argument names (only for the closest-name hint). Returns
    ``{kind: {name: value}}`` with every kind present.
    """
    routed = {kind: {} for kind in owners}
    for key, value in flat.items():
        kinds = [k for k, names in owners.items() if key in names]
        if len(kinds) > 1 and PREFERRED.get(key) in kinds:
            kinds = [PREFERRED[key]]
        if len(kinds) > 1:
            raise ConfigError('%r is an option of the %s: pass it in %s to say which one'
                              % (key, ' and the '.join(kinds),
                                 ' or '.join('%s={%r: ...}' % (DICT_OF[k], key) for k in kinds)))
        if not kinds:
            every = set(own).union(*owners.values())
            raise ConfigError('unknown option %r%s; valid options: %s'
                              % (key, closest(key, every), '; '.join(
                                  '%s: %s' % (kind, ', '.join(sorted(names)))
                                  for kind, names in owners.items() if names)))
        routed[kinds[0]][key] = value
    return routed


def merge(what, routed, explicit):
    """The explicit dictionary plus the flat options routed to it; a name in
    both is refused (which one was meant?)."""
    both = sorted(set(routed) & set(explicit or {}))
    if both:
        raise ConfigError('%s given twice, as a keyword argument and in %s: %s'
                          % (', '.join(map(repr, both)), what, ', '.join(both)))
    return dict(explicit or {}, **routed)
