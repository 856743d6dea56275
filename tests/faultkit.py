"""The fault matrix's scenario and its invariants, for every exchange.

One scripted strategy trades through ``run_live`` against a step-mode
simulator while a fault is injected (``sim.faults``, backtrader_live/sim/
faults.py); afterwards :func:`check` proves what issue 6 asks for:

- orders on the exchange == orders the strategy made (no duplicate, none missing);
- every fill reported exactly once, with the exchange's size and price;
- bars exactly once and in order, with no hole;
- the process never died (run_live returned) and the position is the exchange's.

:func:`record` keeps one matrix row per test; ``tests/fault_matrix.py`` runs the
suite and writes the table to docs/faults.md.
"""
import datetime
import json
import os

import pytest

import backtrader_live as btl
from backtrader_live.sim import BinanceSimulator, BybitSimulator
from livekit import LiveRun, Scripted

EXCHANGES = ('binance', 'bybit')
SIMS = {'binance': BinanceSimulator, 'bybit': BybitSimulator}
TOPIC = {'binance': 'btcusdt@kline_1h', 'bybit': 'kline.60.BTCUSDT'}
# Bybit's simulator reports a unified wallet (spot + contract): keep BTC out of the
# contract side so the spot position starts flat.
SIM_OPTIONS = {'binance': {}, 'bybit': {'contract_balances': {'USDT': 10000}}}
STEP = 0.00001              # BTC/USDT amount step on both simulators
# Short receive window and timeouts: an unanswered create settles in ~1.1 s,
# a silent stream is given up after 1 s.
FAST = {'recv_window': 600, 'timeout': 1.0, 'stream_heartbeat': 0.3,
        'stream_timeout': 1.0}

ROWS = []                   # (fault, exchange, outcome) for the docs table


class Tracked(Scripted):
    """Scripted, plus every order notification with its ref and client id."""

    def notify_order(self, order):
        super().notify_order(order)
        self.orders_seen = getattr(self, 'orders_seen', {})
        self.orders_seen[order.ref] = order       # adopted ones too (owner None)
        self.p.rec.order_log.append((order.ref, order.info.get('client_id'),
                                     order.getstatusname(), order.executed.size,
                                     order.executed.price))


def limit(factor, size=0.01, side='buy'):
    def place(s):
        price = round(s.data.close[0] * factor, 2)
        s.last_limit = getattr(s, side)(size=size, price=price, exectype=btl.Order.Limit)
    return place


def both(*actions):
    def run(s):
        for action in actions:
            action(s)
    return run


# Bars 1-5 are history; 6-11 live. 0.997 x close of bar 6 is filled by bar 7's
# low (real data); the sell at 1.5 x never fills and is cancelled.
SCRIPT = {
    6: both(lambda s: s.buy(size=0.01), limit(0.997)),
    8: lambda s: s.sell(size=0.005),
    9: limit(1.5, size=0.004, side='sell'),
    10: lambda s: s.cancel(s.last_limit),
}
LIVE_BARS = 6


def make_sim(exchange, **kwargs):
    options = dict(SIM_OPTIONS[exchange], speed=None, start_index=600, seed=6)
    options.update(kwargs)
    return SIMS[exchange](**options).start()


def scenario(sim, exchange, before_step=None, script=SCRIPT, steps=LIVE_BARS, store=None,
             **kwargs):
    """Run the script for ``steps`` live bars; ``before_step[i](sim, run)``
    is called by the test thread before live bar i (0-based) closes."""
    run = LiveRun(sim, exchange=exchange, topic=TOPIC[exchange], strategy=Tracked,
                  script=script, backfill_bars=5, max_bars=steps,
                  store_kwargs=dict(FAST, **(store or {})), **kwargs)
    return drive(run, sim, steps, before_step)


def drive(run, sim, steps, before_step=None, wait_subscribed=True):
    """Start ``run``, close ``steps`` live bars (``before_step[i](sim, run)``
    first, for bar i), and join it."""
    run.rec.order_log = []
    run.start(wait_subscribed=wait_subscribed)
    for i in range(steps):
        if before_step and i in before_step:
            before_step[i](sim, run)
        run.step(1)
    run.join(30)
    return run


def saw(run, *statuses):
    """The data notifications include ``statuses`` in this order."""
    seen, at = run.rec.data_status, 0
    for status in statuses:
        if status not in seen[at:]:
            return False
        at = seen.index(status, at) + 1
    return True


def closed_bar_times(sim, start_ms, end_ms):
    """Open times (ms) of the closed 1h BTC/USDT bars in [start_ms, end_ms]."""
    def read():
        feed = sim.clock.feeds['BTCUSDT']
        rows, last_closed = feed.bars('1h', sim.clock.now, start=start_ms)
        return [r[0] for r in (rows if last_closed else rows[:-1]) if r[0] <= end_ms]
    return sim._call(read)


def _ms(dt):
    return int(dt.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def check_bars(run, sim):
    times = [_ms(b[0]) for b in run.rec.bars]
    assert times == sorted(set(times)), 'a bar was delivered twice or out of order'
    assert times == closed_bar_times(sim, times[0], times[-1]), 'a closed bar is missing'
    return len(times)


def check_orders(run, sim, market='spot'):
    """Orders and fills; returns (orders, fills) counts."""
    log = run.rec.order_log
    ours = [o for o in sim.orders(market=market) if o.client_id.startswith('btl')]
    cids = [o.client_id for o in ours]
    assert len(cids) == len(set(cids)), 'an order was placed twice'
    accepted = {e[1] for e in log if e[2] == 'Accepted'}
    assert set(cids) == accepted, 'exchange orders %s != accepted %s' % (cids, accepted)
    trades = sim.trades(market=market)
    fills = 0
    for order in ours:
        fills += _check_fills(order, [t for t in trades if t.order_id == order.id],
                              [e for e in log if e[1] == order.client_id], market)
    return len(ours), fills


# exchange status -> the strategy's last word on the order
FINAL = {'FILLED': 'Completed', 'CANCELED': 'Canceled', 'EXPIRED': 'Expired',
         'NEW': ('Accepted', 'Partial'), 'PARTIALLY_FILLED': ('Partial',)}


def _check_fills(order, trades, log, market):
    statuses = [e[2] for e in log]
    final = FINAL[order.status]
    assert statuses[-1] in (final if isinstance(final, tuple) else (final,)), \
        (order.client_id, order.status, statuses)
    reported = statuses.count('Partial') + statuses.count('Completed')
    assert reported == len(trades), '%s: %d fills on the exchange, %d reported: %s' % (
        order.client_id, len(trades), reported, statuses)
    if not trades:
        return 0
    fee_in_base = market == 'spot' and order.side == 'BUY'
    size = sum(float(t.qty) - (float(t.commission) if fee_in_base and
                               t.commission_asset == 'BTC' else 0.0) for t in trades)
    vwap = sum(float(t.qty) * float(t.price) for t in trades) / sum(float(t.qty) for t in trades)
    _, _, _, executed, price = log[-1]
    assert abs(executed) == pytest.approx(size, abs=1e-9), (order.client_id, executed, size)
    assert price == pytest.approx(vwap, rel=1e-9)
    return len(trades)


def check_position(run, sim, exchange):
    strategy = run.rec.strategy
    held = sim.balances().get('BTC', {})
    total = float(held.get('free', 0)) + float(held.get('locked', 0))
    assert strategy.position.size == pytest.approx(total, abs=STEP)


def check(run, sim, exchange, market='spot'):
    """Every invariant; returns a short outcome text for the matrix."""
    assert run.error is None
    bars = check_bars(run, sim)
    orders, fills = check_orders(run, sim, market)
    if market == 'spot':
        check_position(run, sim, exchange)
    return '%d orders = exchange, %d fills once, %d bars in order' % (orders, fills, bars)


def record(case, exchange, outcome, table='faults'):
    """One row of a docs table ('faults' or 'bad input')."""
    ROWS.append((table, case, exchange, outcome))


@pytest.fixture(scope='module', autouse=True)
def matrix_rows():
    """Import into a test module: its rows go to $BTL_FAULT_MATRIX at the end."""
    yield
    if matrix_path():
        write_rows(matrix_path())


def write_rows(path):
    """Append this session's rows (JSON lines) for tests/fault_matrix.py."""
    with open(path, 'a') as fh:
        for row in ROWS:
            fh.write(json.dumps(row) + '\n')
    ROWS.clear()


def matrix_path():
    return os.environ.get('BTL_FAULT_MATRIX')
