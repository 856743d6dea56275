"""The broker bounds backtrader's order/trade history by editing upstream's
private lists (history.py): those internals are guarded here, against the
pinned backtrader, and a mismatch leaves the history alone, said once."""
import logging

import backtrader
import pytest

from backtrader_live import history
from test_risk_kit import Script, cerebro, synthetic_rows


def _round_trips(bars, **broker_kwargs):
    """A backtest buying on odd bars and selling on even ones (3 notifications each)."""
    c = cerebro(synthetic_rows([100.0 + i % 7 for i in range(bars)]), **broker_kwargs)
    c.addstrategy(Script, each=lambda s: s.buy(size=1) if len(s) % 2 else s.sell(size=1))
    return c.run()[0]


def test_the_pinned_backtrader_has_the_lists_the_trimmer_edits():
    assert backtrader.__version__ == history.KNOWN_VERSION
    strat = _round_trips(6, history_kept=None)
    assert history.internals_problem(strat.broker, [strat]) is None
    # what the trimmer relies on, beyond the types: finished orders stay in
    # these lists, trades are {data: {tradeid: [Trade]}}
    assert strat.broker.orders and all(not o.alive() for o in strat.broker.orders[:-1])
    assert strat._orders and strat._trades[strat.data][0]


def test_history_is_bounded_to_history_kept():
    kept = _round_trips(400, history_kept=20)
    full = _round_trips(400, history_kept=None)
    assert len(full.broker.orders) >= 399 and len(full._orders) >= 3 * 399
    # trimmed every 256 notifications: at most keep + what came since
    assert 20 <= len(kept.broker.orders) <= 20 + 256
    assert len(kept._orders) <= 20 + 256 and len(kept._trades[kept.data][0]) <= 20 + 256
    # and the run itself is the same run
    assert kept.broker.getvalue() == pytest.approx(full.broker.getvalue())
    assert kept.held == full.held


def test_changed_internals_leave_the_history_alone_and_say_so_once(monkeypatch, caplog):
    strat = _round_trips(8, history_kept=None)
    before = (list(strat.broker.orders), list(strat._orders))
    monkeypatch.setattr(backtrader, '__version__', '1.9.99.1')
    with caplog.at_level(logging.WARNING, logger='backtrader_live.history'):
        assert strat.broker._trim_history(1) is False
        assert strat.broker._trim_history(1) is False
    assert (strat.broker.orders, strat._orders) == before
    warned = [r.getMessage() for r in caplog.records]
    assert warned == ['order history not trimmed (history_kept=1): backtrader 1.9.99.1 '
                      'is not 1.9.78.123']
    monkeypatch.undo()
    strat.broker._history.owners.append(strat)
    strat._trades = []        # a list where upstream keeps a dict: refused by name
    assert history.internals_problem(strat.broker, [strat]) == 'Script._trades is not a dict'
