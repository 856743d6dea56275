"""Parity, measured (issue 14 part 3): each corpus strategy over the same
candles as a backtest, a paper run and a live run against the simulator, on
Binance spot, Binance USDⓈ-M and Bybit linear. The orders (type, side, size,
price, bar, parent/OCO links) and fills must match the backtest's, with every
difference named by a rule of paritykit.RULES (exchange rounding, fees, the
market fill at arrival); an unnamed difference fails the test.

PARITY_JSON=path (with -n 0: one process appends to it) writes the table docs/parity.md shows
(python tests/parity_table.py path turns it into markdown).
"""
import json
import os

import pytest

import paritykit as pk
from paritycorpus import CASES

VENUES = ['binance-spot', 'binance-usdm', 'bybit-linear']

# Real divergences found by this harness (product defects), kept visible as
# strict xfails while open: (case, venue) -> why. Fixed so far: Order.Close at
# the session close; order_target_percent on derivatives sized as margin at the
# exchange's leverage (accounts._StepSizing sizes notional now).
KNOWN = {}


def _record(venue, name, mode, verdict, diffs):
    path = os.environ.get('PARITY_JSON')
    if not path:
        return
    rows = json.load(open(path)) if os.path.exists(path) else []
    rows.append({'venue': venue, 'case': name, 'mode': mode, 'orders_equal': verdict[0],
                 'fills_ok': verdict[1], 'rules': verdict[2],
                 'unexplained': [list(map(str, d)) for d in diffs if d[3] is None]})
    with open(path, 'w') as f:
        json.dump(rows, f, indent=1)


def _cases():
    for name in CASES:
        for venue in VENUES:
            why = KNOWN.get((name, venue))
            marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
            yield pytest.param(venue, name, marks=marks, id='%s-%s' % (name, venue))


@pytest.mark.parametrize('venue,name', list(_cases()))
def test_same_orders_and_fills_in_every_mode(venue, name, tmp_path):
    logs = pk.run_modes(venue, CASES[name], tmp_path)
    assert logs['backtest'].orders and logs['backtest'].fills, 'the case must trade'
    failures = []
    for mode in ('paper', 'live'):
        diffs = pk.compare(logs['backtest'], logs[mode], venue, logs['live'].rules)
        verdict = pk.verdict(diffs)
        _record(venue, name, mode, verdict, diffs)
        failures += [(mode,) + d for d in diffs if d[3] is None]
    assert not failures, failures
