"""Bounding backtrader's order and trade history: the one place that edits
upstream's private lists.

Upstream (backtrader 1.9.78.123) keeps every order and trade for the whole
run: ``BackBroker.orders`` (every order), its per-order OCO bookkeeping
(``_ocos``, ``_ocol``) and parent/children deques (``_pchildren``), and per
strategy ``Strategy._orders`` (notification snapshots) and
``Strategy._trades`` ({data: {tradeid: [Trade]}}). It reads only the alive
orders and the last trade back, so forgetting the old finished ones is
safe, but these names are private: :func:`internals_problem` checks them
before anything is edited, and tests/test_broker_history.py guards them
against the pinned version.
"""
import logging

import backtrader

log = logging.getLogger(__name__)

#: the upstream release whose private lists this module knows
KNOWN_VERSION = '1.9.78.123'
#: {attribute: type} of upstream's broker and strategy that trimming edits
BROKER_LISTS = {'orders': list, '_ocos': dict, '_ocol': dict, '_pchildren': dict}
STRATEGY_LISTS = {'_orders': list, '_trades': dict}


def internals_problem(broker, strategies=()):
    """None if the private lists are what this module edits, else why not."""
    if backtrader.__version__ != KNOWN_VERSION:
        return 'backtrader %s is not %s' % (backtrader.__version__, KNOWN_VERSION)
    for owner, names in [(broker, BROKER_LISTS)] + [(s, STRATEGY_LISTS) for s in strategies]:
        for name, kind in names.items():
            if not isinstance(getattr(owner, name, None), kind):
                return '%s.%s is not a %s' % (type(owner).__name__, name, kind.__name__)
    return None


class HistoryTrimmer:
    """Forgets finished orders and closed trades beyond the last ``keep``.

    If upstream's internals are not the ones this module knows, it says so
    once (a warning) and leaves the history alone: memory grows as in plain
    backtrader, but nothing upstream reads is touched blindly.
    """

    def __init__(self):
        self.owners = []        # strategies whose history is bounded
        self.problem = None     # why trimming is off (upstream's internals differ)

    def add_owner(self, owner):
        # identity: a strategy may overload == (lines objects do)
        if owner is not None and not any(o is owner for o in self.owners):
            self.owners.append(owner)

    def trim(self, broker, keep):
        """Returns True if trimmed; False (warned once) if the internals differ."""
        # Checked every time (a few getattr, every 256 notifications): a
        # strategy seen later is checked too.
        problem = internals_problem(broker, self.owners)
        if problem:
            if self.problem is None:
                log.warning('order history not trimmed (history_kept=%s): %s', keep, problem)
            self.problem = problem
            return False
        _trim_broker(broker, keep)
        for strategy in self.owners:
            _trim_strategy(strategy, keep)
        return True


def _trim_broker(broker, keep):
    done = [o for o in broker.orders if not o.alive()]
    if len(done) > keep:
        dropped = done[:len(done) - keep]
        ids = set(map(id, dropped))
        broker.orders[:] = [o for o in broker.orders if id(o) not in ids]
        for o in dropped:       # BackBroker's per-order OCO bookkeeping
            broker._ocos.pop(o.ref, None)
            broker._ocol.pop(o.ref, None)
    # BackBroker leaves an empty parent/children deque per executed order
    for ref in [r for r, pc in broker._pchildren.items() if not pc]:
        del broker._pchildren[ref]


def _trim_strategy(strategy, keep):
    # notification snapshots (clones, frozen in the status they had):
    # upstream appends them and never reads them back
    if len(strategy._orders) > keep:
        del strategy._orders[:len(strategy._orders) - keep]
    for per_id in strategy._trades.values():
        for trades in per_id.values():
            if len(trades) > keep:
                del trades[:len(trades) - keep]
