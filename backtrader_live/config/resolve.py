"""From a validated config to classes and run_live's arguments."""
import importlib
import importlib.util
import os
import sys

from ..errors import ConfigError


def load_class(spec, base_dir=None, namespace=None):
    """``'package.module:Class'`` or ``'path/to/file.py:Class'`` (a path
    relative to ``base_dir``); a bare name is looked up in ``namespace``
    (a module such as backtrader_live.sizers) when given."""
    if ':' not in spec:
        if namespace is not None and hasattr(namespace, spec):
            return getattr(namespace, spec)
        raise ConfigError("%r is not a class reference: write 'package.module:Class' or "
                          "'path/to/file.py:Class'%s" % (spec, (
                              ' or a name of %s' % namespace.__name__) if namespace else ''))
    where, _, name = spec.rpartition(':')
    if where.endswith('.py'):
        module = _load_file(where, base_dir)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ConfigError('cannot import %r (from %r): %s' % (where, spec, exc)) from exc
    try:
        return getattr(module, name)
    except AttributeError:
        raise ConfigError('%r has no %r (from %r); it has: %s' % (
            where, name, spec, ', '.join(n for n in dir(module) if n[:1].isupper())
            or 'no classes')) from None


def _load_file(path, base_dir):
    full = os.path.abspath(os.path.join(base_dir or os.getcwd(), os.path.expanduser(path)))
    if not os.path.isfile(full):
        raise ConfigError('strategy file %s does not exist' % full)
    name = 'btl_config_' + os.path.splitext(os.path.basename(full))[0]
    module_spec = importlib.util.spec_from_file_location(name, full)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module          # dataclasses/pickle look modules up here
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ConfigError('importing %s failed: %s: %s' % (full, type(exc).__name__,
                                                          exc)) from exc
    return module


def strategy_class(config, base_dir=None):
    return load_class(config.strategy.class_, base_dir)


def check_options(config, base_dir=None):
    """Every [options.*] and [strategy.params] key, checked against the
    exchange's store/broker/feed classes and the strategy by run_live's own
    routing code (Cerebro._route_options). Imports the strategy."""
    from ..cerebro import Cerebro, find_store
    explicit = dict(config.options.model_dump(), strategy=dict(config.strategy.params))
    return Cerebro()._route_options(find_store(config.live.exchange),
                                    strategy_class(config, base_dir), {}, explicit)


def run_live_arguments(config, base_dir=None, credentials=None):
    """``(args, kwargs)`` for ``Cerebro.run_live`` from the config."""
    live = config.live.model_dump()
    args = (live.pop('exchange'), live.pop('symbol'), live.pop('timeframe'),
            strategy_class(config, base_dir))
    options = config.options
    kwargs = dict(live, strategy_params=dict(config.strategy.params),
                  store_kwargs=dict(options.store), broker_kwargs=dict(options.broker),
                  data_kwargs=dict(options.data), run_kwargs=dict(options.run))
    if credentials:
        kwargs.update(apikey=credentials[0], secret=credentials[1])
    return args, kwargs


def setup_cerebro(cerebro, config, base_dir=None):
    """Sizer, analyzers, RiskAnalyzer and notifications from the config."""
    from .. import analyzers, sizers
    from ..analyzers import RiskAnalyzer
    if config.sizer is not None:
        cerebro.addsizer(load_class(config.sizer.class_, base_dir, sizers),
                         **config.sizer.params)
    for item in config.analyzers:
        cerebro.addanalyzer(load_class(item.class_, base_dir, analyzers), **item.params)
    risk = config.risk.model_dump()
    if risk.pop('enabled'):
        cerebro.addanalyzer(RiskAnalyzer, **risk)
    notes = config.notifications
    if notes.methods or notes.settings:
        from ..notifications import setup_external_notifications
        setup_external_notifications(cerebro, notes.methods or None, **notes.settings)
