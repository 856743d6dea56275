"""Exchange profiles (data) and the exchange registry (names -> store classes).

An exchange is found by name in three places, in this order:

1. ``register(name, target)`` at runtime (tests, notebooks);
2. the Python entry points of group ``backtrader_live.exchanges`` (an
   installed package declares ``myexchange = mypkg.store:MyStore`` in its
   ``[project.entry-points."backtrader_live.exchanges"]``);
3. the built-in exchanges below.

A target is a store class or ``'module:Class'`` (imported on first use), a
subclass of :class:`backtrader_live.store.Store` with a profile. Cerebro's
``run_live``, ``btl.stores``/``btl.brokers``/``btl.feeds`` (``<Name>Store``,
``<Name>Broker``, ``<Name>Data``) all ask here, so a new exchange is new
files only; a name found nowhere goes to the generic ccxt tier (cerebro.py).
"""
import difflib
import importlib
import importlib.metadata
import threading

from ..errors import ConfigError
from .profile import ExchangeProfile, Product

__all__ = ['ENTRY_POINT_GROUP', 'ExchangeProfile', 'Product', 'closest', 'names',
           'register', 'store_class', 'unregister']

ENTRY_POINT_GROUP = 'backtrader_live.exchanges'

BUILTIN = {'binance': 'backtrader_live.stores.binance:BinanceStore',
           'bybit': 'backtrader_live.stores.bybit:BybitStore'}

_registered = {}
_loaded = {}          # target string -> class, so a class is imported once
_lock = threading.Lock()


def register(name, target, replace=False):
    """Make exchange ``name`` mean ``target`` (a store class or 'module:Class')."""
    key = _key(name)
    with _lock:
        if key in _registered and not replace:
            raise ConfigError('exchange %r is registered already (as %r); pass replace=True '
                              'to replace it' % (key, _registered[key]))
        _registered[key] = target
    return key


def unregister(name):
    """Forget a runtime registration (entry points and built-ins stay)."""
    with _lock:
        _registered.pop(_key(name), None)


def names():
    """Every exchange name known: registered, entry points, built-in."""
    return sorted(set(_registered) | set(_entry_points()) | set(BUILTIN))


def store_class(name):
    """The store class of exchange ``name``, or None if no one declares it."""
    key = _key(name)
    target = _registered.get(key) or _entry_points().get(key) or BUILTIN.get(key)
    if target is None:
        return None
    return _load(key, target)


def closest(name, candidates=None):
    """The known name nearest to a misspelt ``name`` (None if none is near)."""
    found = difflib.get_close_matches(_key(name), candidates or names(), n=1, cutoff=0.75)
    return found[0] if found else None


def class_for(role, attribute):
    """``<Name>Store``/``<Name>Broker``/``<Name>Data`` of a known exchange, for
    the ``btl.stores``/``brokers``/``feeds`` namespaces; None if no exchange
    has that name. ``role``: 'Store', 'Broker' or 'Data'."""
    if not attribute.endswith(role) or attribute == role:
        return None
    wanted = attribute[:-len(role)].lower()
    for name in names():
        store_cls = store_class(name) if name.replace('_', '') == wanted else None
        if store_cls is not None:
            return store_cls if role == 'Store' else getattr(store_cls, role + 'Cls')
    return None


def namespace_getattr(module_name, role):
    """The module ``__getattr__`` of ``btl.stores``/``brokers``/``feeds``:
    ``<Name><role>`` of any registered exchange (entry points or register()),
    so a new exchange needs no edit in those modules."""
    def __getattr__(name):
        found = class_for(role, name) if not name.startswith('_') else None
        if found is None:
            raise AttributeError('module %r has no attribute %r' % (module_name, name))
        return found
    return __getattr__


def _key(name):
    if not isinstance(name, str) or not name.strip():
        raise ConfigError('an exchange name must be a non-empty string, got %r' % (name,))
    return name.strip().lower()


def _entry_points():
    """{name: 'module:attr'} of installed packages (read each time: cheap, and
    a package installed mid-session is seen)."""
    return {ep.name.lower(): ep.value
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _load(name, target):
    if not isinstance(target, str):
        return _checked(name, target)
    with _lock:
        cls = _loaded.get(target)
    if cls is None:
        module, _, attr = target.partition(':')
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError('exchange %r: cannot load %r (%s)' % (name, target, exc)) from exc
        with _lock:
            _loaded[target] = _checked(name, cls)
    return cls


def _checked(name, cls):
    from ..store import Store
    if not (isinstance(cls, type) and issubclass(cls, Store)):
        raise ConfigError('exchange %r: %r is not a backtrader_live Store subclass'
                          % (name, cls))
    if cls.BrokerCls is None or cls.DataCls is None:
        raise ConfigError('exchange %r: %s needs BrokerCls and DataCls' % (name, cls.__name__))
    return cls
