"""Notifications end to end in live runs against the simulator: fills,
rejections, closed trades and data status reach a callback and a real HTTP
webhook on their own; a hung channel never slows ``next()``."""
import logging
import re
import statistics
import time

import pytest

import backtrader_live as btl
from livekit import LiveRun
from notifykit import Collector, HttpRecorder, bt_live_threads, eventually, silent_port

BUY_SMALL = lambda s: s.buy(size=0.01)            # noqa: E731
BUY_TOO_MUCH = lambda s: s.buy(size=50.0)         # noqa: E731
CLOSE = lambda s: s.close()                       # noqa: E731


def test_an_unchanged_strategy_gets_fills_rejects_and_trades_out(sim):
    got = Collector()
    cerebro = btl.Cerebro()
    with HttpRecorder() as hook:
        btl.setup_external_notifications(cerebro, ['callback', 'webhook'], callback=got,
                                         webhook_url=hook.url + '/live')
        run = LiveRun(sim, script={6: BUY_SMALL, 7: BUY_TOO_MUCH, 8: CLOSE}, max_bars=4,
                      cerebro=cerebro).start()
        run.step(4)
        run.join()
        # run() returned: everything queued was delivered (drained) before it did
        assert len(hook.requests) == len(got.items)
    assert bt_live_threads() == []
    rec = run.rec
    assert rec.statuses().count('Completed') == 2 and 'Rejected' in rec.statuses()
    texts = got.texts()
    assert texts[0] == 'BTC/USDT: data is LIVE'
    buy, rejected, sell = got.of_kind('order')
    (trade,) = got.of_kind('trade')
    # the strategy's own view of the fills and the notifications agree
    completed = [o for o in rec.orders if o[0] == 'Completed']
    assert str(buy).startswith('BUY 0.00999 BTC/USDT @ ') and ' completed, commission ' in buy
    assert buy.data['executed_price'] == completed[0][2]
    assert buy.data['commission'] == completed[0][3]
    assert str(sell).startswith('SELL 0.00999 BTC/USDT @ ')
    assert sell.data['executed_size'] == abs(completed[1][1])
    assert str(rejected).startswith('BUY 50 BTC/USDT market rejected: ')
    assert 'insufficient balance' in rejected.lower() and rejected.levelname == 'WARNING'
    assert trade.data['pnlcomm'] == rec.trades[0][1] and trade.data['pnl'] == rec.trades[0][0]
    assert str(trade).startswith('Trade closed on BTC/USDT: PnL ')
    assert [n.kind for n in got.items] == ['data_status', 'order', 'order', 'order', 'trade',
                                           'data_status']
    # the feed's DISCONNECTED comes after Cerebro's last delivery; it is sent anyway
    assert texts[-1] == 'BTC/USDT: data DISCONNECTED' and got.items[-1].levelname == 'WARNING'
    # the webhook carried the same notifications as JSON
    assert [b['text'] for b in hook.bodies()] == texts
    assert [b['kind'] for b in hook.bodies()] == [n.kind for n in got.items]
    assert rec.strategy.analyzers.notifications.get_analysis()['trade'] == 2   # open + close


class TimedLive(btl.LiveStrategy):
    """A LiveStrategy that triggers a notification on every bar and times it."""

    params = (('rec', None), ('script', None))

    def __init__(self):
        self.p.rec.strategy = self
        self.durations = []

    def next(self):
        rec = self.p.rec
        rec.bars.append((self.data.datetime.datetime(0), self.data.close[0]))
        started = time.perf_counter()
        self.env.trigger_notifications('bar %d closed at %s' % (len(rec.bars),
                                                                 self.data.close[0]),
                                       kind='bar')
        self.durations.append(time.perf_counter() - started)
        action = self.p.script.get(len(rec.bars))
        if action is not None:
            action(self)


def _risk_alert(strategy):
    strategy.env.trigger_notifications('drawdown 12.0% exceeds the 10.0% limit',
                                       level='WARNING', kind='risk_alert',
                                       data={'rule': 'max_drawdown', 'value': 0.12})


@pytest.mark.serial      # a latency/duration bound: alone, not beside other workers
def test_a_hung_channel_does_not_slow_next_nor_lose_other_messages(sim, caplog):
    caplog.set_level(logging.INFO)
    got = Collector()
    cerebro = btl.Cerebro()
    with silent_port() as port:
        # every POST hangs until its 2 s timeout; the strategy must not notice
        btl.setup_external_notifications(
            cerebro, ['callback', 'webhook'], callback=got, drain_timeout=0.5,
            webhook_url='http://127.0.0.1:%d/hook' % port, webhook_level='DEBUG', timeout=2,
            retries=0)
        run = LiveRun(sim, script={6: BUY_SMALL, 7: _risk_alert, 8: CLOSE}, max_bars=4,
                      cerebro=cerebro, strategy=TimedLive).start()
        run.step(4)
        stopping = time.monotonic()
        run.join()
        stop_took = time.monotonic() - stopping
    strategy = run.rec.strategy
    # 9 triggers while the webhook hung: each returned at once (a 2 s hang
    # would show as 2 s; 0.1 s is a generous bound for a loaded machine)
    assert len(strategy.durations) == 9
    assert max(strategy.durations) < 0.1 and statistics.median(strategy.durations) < 0.005
    assert stop_took < 4.0          # bounded drain: 0.5 s + the send in flight + run wrap-up
    # the healthy channel lost nothing
    bars = [n for n in got.items if n.kind == 'bar']
    assert [str(n).split(' closed')[0] for n in bars] == ['bar %d' % i for i in range(1, 10)]
    assert [n.kind for n in got.items if n.kind != 'bar'] == [
        'data_status', 'order', 'risk_alert', 'order', 'trade', 'data_status']
    # run() gave up on the hung channel at its deadline and said so; the send
    # in flight ends at its own timeout, then the thread drops the rest and ends
    assert 'webhook:127.0.0.1 is stuck in a send' in caplog.text
    eventually(lambda: not bt_live_threads(), 5)
    stats = cerebro.notifier.stats()
    assert stats['webhook:127.0.0.1']['sent'] == 0
    assert stats['webhook:127.0.0.1']['failed'] == 1          # the one timed out
    assert stats['webhook:127.0.0.1']['dropped'] > len(got.items)  # DEBUG ones too
    assert stats['callback:Collector']['sent'] == len(got.items)
    # LiveStrategy logged fills, the trade, the data status and the alert, stamped
    # with bar times
    lines = [r.getMessage() for r in caplog.records if r.name.endswith('.TimedLive')]
    stamps = {b[0].isoformat(sep=' ') for b in run.rec.bars}
    stamp = r'(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) '
    patterns = [stamp + r'BTC/USDT: data is LIVE$',
                stamp + r'BUY 0\.00999 BTC/USDT @ [\d.]+ completed, commission [\d.e-]+ '
                r'\(order \d+\)$',
                stamp + r'risk alert: drawdown 12\.0% exceeds the 10\.0% limit$',
                stamp + r'SELL 0\.00999 BTC/USDT @ [\d.]+ completed, commission [\d.e-]+ '
                r'\(order \d+\)$',
                stamp + r'Trade closed on BTC/USDT: PnL [-\d.e]+, net [-\d.e]+ after [\d.e-]+ '
                r'commission \(trade \d+\)$']
    for pattern in patterns:
        (match,) = [m for m in map(re.compile(pattern).match, lines) if m]
        assert match.group(1) in stamps
    assert 'webhook:127.0.0.1 failed' in caplog.text


def test_partial_fills_are_reported_as_they_happen(make_sim):
    sim = make_sim(depth_qty=0.02, balances={'USDT': 100000.0})
    got = Collector()
    cerebro = btl.Cerebro()
    btl.setup_external_notifications(cerebro, 'callback', callback=got)
    run = LiveRun(sim, script={6: lambda s: s.buy(size=0.05)}, max_bars=2,
                  cerebro=cerebro).start()
    run.step(2)
    run.join()
    orders = got.of_kind('order')
    partial = [n for n in orders if n.data['status'] == 'Partial']
    # One notification per distinct state the strategy saw: when several fills
    # arrive in one update the broker hands over identical Partial copies,
    # and de-duplication sends that state once.
    seen = [o[1] for o in run.rec.orders if o[0] == 'Partial']
    assert len(partial) == len(set(seen)) >= 1 and len(seen) >= 2
    assert all(re.match(r'BUY [\d.]+ BTC/USDT @ [\d.]+ \(of 0\.05\) partially filled, '
                        r'commission [\d.e-]+$', str(n)) for n in partial)
    filled = [n.data['executed_size'] for n in partial]
    assert filled == sorted(filled) and len(set(filled)) == len(filled)   # growing, none lost
    assert orders[-1].data['status'] == 'Completed'
    assert orders[-1].data['executed_price'] == run.rec.orders[-1][2]
