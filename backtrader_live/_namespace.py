"""Merge an upstream backtrader module's public names into one of ours.

``backtrader_live`` must be a drop-in for ``backtrader``: every public name of
upstream's top level and of each sub-namespace (feeds, brokers, ...) has to be
reachable from ours, as the *same* object unless we deliberately subclass it.
"""
import types


def public_names(module: types.ModuleType):
    """Names a user can reach as ``module.name`` (no private ones)."""
    return [n for n in dir(module) if not n.startswith('_')]


def merge_into(namespace: dict, upstream: types.ModuleType) -> None:
    """Copy upstream's public names that ``namespace`` does not define yet.

    Names already defined win: those are our subclasses that replace the
    upstream class of the same name (Cerebro, Store, BrokerBase, DataBase...).
    """
    for name in public_names(upstream):
        namespace.setdefault(name, getattr(upstream, name))
