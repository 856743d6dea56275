"""Live broker edge cases against the simulator: unknown outcomes resolved by
client order id, reconciliation after a lost stream, REST fallback, exit
policy, adopted positions and the order types we refuse."""
import os
import signal
import threading

import pytest

import backtrader_live as btl
from backtrader_live.sim import BinanceSimulator
from backtrader_live.stores import BinanceStore
from helpers import eventually
from livekit import LiveRun

BUY_SMALL = lambda s: s.buy(size=0.01)            # noqa: E731


def _limit(price_factor, size=0.01):
    def place(s):
        s.order = s.buy(size=size, price=round(s.data.close[0] * price_factor, 2),
                        exectype=btl.Order.Limit)
    return place


# A small receive window: an unanswered create is settled within ~1.5 s.
FAST_RESOLVE = {'recv_window': 1000}


def test_timed_out_create_is_resolved_by_client_id_not_resent(sim):
    # The exchange accepts the order, then the answer is lost (sim/faults.py).
    sim.faults.rest('create_order', 'accept_then_reset')
    run = LiveRun(sim, script={6: BUY_SMALL}, max_bars=2, store_kwargs=FAST_RESOLVE).start()
    run.step(2)
    run.join()
    assert len(sim.orders()) == 1                     # placed once, never twice
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Completed']
    assert run.rec.orders[-1][1] == pytest.approx(0.00999)


def test_timed_out_create_that_never_arrived_is_rejected_clearly(sim):
    # The connection drops before the exchange reads the request.
    sim.faults.rest('create_order', 'reset')
    run = LiveRun(sim, script={6: BUY_SMALL}, max_bars=1, store_kwargs=FAST_RESOLVE).start()
    run.step(1)
    run.join()
    assert sim.orders() == []
    status, _, _, _, reason = run.rec.orders[-1]
    assert status == 'Rejected' and 'nothing was placed' in reason


def test_unresolvable_create_stays_submitted_until_reconciled(sim):
    sim.faults.rest('create_order', 'accept_then_reset')
    sim.faults.rest('fetch_order', 'server_error', status=503, times=None)

    def heal_and_reconcile(s):
        sim.faults.clear()
        s.broker.reconcile()
    run = LiveRun(sim, script={6: BUY_SMALL, 7: heal_and_reconcile}, max_bars=2,
                  broker_kwargs={'resolve_attempts': 1},
                  store_kwargs=dict(FAST_RESOLVE, rest_retries=0)).start()
    run.step(2)
    run.join()
    assert len(sim.orders()) == 1
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Completed']


def test_fill_missed_while_the_user_stream_was_down_is_reported_once(sim):
    # 0.997 x 4191.53 = 4178.96: the next real bar (low 4174.97) fills it.
    run = LiveRun(sim, script={6: _limit(0.997)}, max_bars=12).start()
    run.step(1)
    eventually(lambda: run.rec.statuses() == ['Submitted', 'Accepted'])
    sim.close_ws_connections()
    run.step(5)             # the limit fills meanwhile
    sim.wait_user_subscribed(timeout=10)
    eventually(lambda: 'Completed' in run.rec.statuses(), 10)
    run.step(6)
    run.join()
    assert run.rec.statuses().count('Completed') == 1
    (order,) = sim.orders()
    assert order.status == 'FILLED'
    assert run.rec.positions[-1] == pytest.approx(float(order.executed) * (1 - 0.001))


def test_rest_fallback_when_the_user_stream_cannot_connect(sim):
    # The exchange refuses user-data handshakes (HTTP 503): the stream keeps
    # retrying, the broker polls REST meanwhile.
    sim.faults.drop_ws('private', seconds=None)
    run = LiveRun(sim, script={6: _limit(0.995)}, max_bars=10,
                  broker_kwargs={'rest_poll_interval': 0.0})
    run.start(wait_subscribed=False)
    # The market stream is up (only the user stream is refused). A bar that
    # closed before its subscription is fetched at once now (it used to hang
    # this test's first step under load: tests/test_late_subscription.py).
    sim.wait_subscribed('btcusdt@kline_1h', timeout=30)
    run.step(10)
    run.join()
    assert run.rec.statuses()[-1] == 'Completed'
    assert run.rec.positions[-1] > 0


def test_open_orders_are_left_alone_by_default_and_cancelled_on_request(sim):
    run = LiveRun(sim, script={6: _limit(0.5)}, max_bars=1).start()
    run.step(1)
    run.join()
    assert [o.status for o in sim.orders()] == ['NEW']

    # open_orders='leave': the first run's order is not adopted (restart.py),
    # so only this run's own order is cancelled on exit.
    run = LiveRun(sim, script={6: _limit(0.5)}, max_bars=1, cancel_on_exit=True,
                  broker_kwargs={'open_orders': 'leave'}).start()
    run.step(1)
    run.join()
    assert [o.status for o in sim.orders()] == ['NEW', 'CANCELED']


def test_existing_holdings_are_adopted_as_the_position(sim):
    sim.set_balance('BTC', 0.25)
    run = LiveRun(sim, max_bars=1).start()
    run.step(1)
    run.join()
    assert run.rec.positions[0] == pytest.approx(0.25)
    broker = run.rec.strategy.broker
    assert broker.getvalue() == pytest.approx(10000 + 0.25 * run.rec.bars[-1][1])
    assert broker.getvalue([run.rec.strategy.data]) == pytest.approx(0.25 * run.rec.bars[-1][1])
    assert broker.get_balances()['BTC'] == (0.25, 0.0)


def test_dust_is_not_adopted(sim):
    sim.set_balance('BTC', 0.0001)            # 0.42 USDT: below the 5 USDT minimum
    run = LiveRun(sim, max_bars=1).start()
    run.step(1)
    run.join()
    assert run.rec.positions[0] == 0


@pytest.mark.parametrize('script,reason', [
    # StopTrail, brackets and OCO are emulated live now (tests/test_order_links.py,
    # tests/test_emulated_orders.py); a Historical order replays a backtest's fills
    ({6: lambda s: s.buy(size=0.01, price=s.data.close[0], exectype=btl.Order.Historical,
                           histnotify=True)},
     "Historical orders replay a backtest's fills and cannot be sent to binance"),
])
@pytest.mark.parametrize('gate', [True, False])
def test_unsupported_orders_are_refused_with_a_reason(sim, script, reason, gate):
    run = LiveRun(sim, script=script, max_bars=1,
                  broker_kwargs={'risk_management': gate}).start()
    run.step(1)
    run.join()
    reasons = [o[4] for o in run.rec.orders if o[0] == 'Rejected']
    assert reasons and all(r.startswith(reason) for r in reasons)
    assert sim.orders() == []


def test_without_the_gate_the_exchange_judges(sim):
    run = LiveRun(sim, script={6: lambda s: s.buy(size=0.0001)}, max_bars=1,
                  broker_kwargs={'risk_management': False}).start()
    run.step(1)
    run.join()
    status, _, _, _, reason = run.rec.orders[-1]
    assert status == 'Rejected' and 'NOTIONAL' in reason


def test_amounts_and_prices_are_rounded_to_the_market(sim):
    def odd(s):
        s.order = s.buy(size=0.0123456789, price=1234.56789, exectype=btl.Order.Limit)
    run = LiveRun(sim, script={6: odd}, max_bars=1).start()
    run.step(1)
    run.join()
    (order,) = sim.orders()
    assert float(order.qty) == 0.01234 and float(order.price) == 1234.57


def test_duration_and_signals_stop_a_speed_mode_run():
    with BinanceSimulator(speed=3600 * 20) as sim:
        from helpers import KEY, SECRET
        cerebro = btl.Cerebro()
        done = threading.Event()

        def sigterm_once_running():
            # Not after a fixed delay: a SIGTERM before run_live's handler is
            # in would end the process (the default action).
            def running():
                return (done.is_set() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
                        and cerebro.datas and len(cerebro.datas[0]) >= 2)
            try:
                eventually(running, 30)
            except AssertionError:
                for data in cerebro.datas:
                    data.request_stop()             # fail below, not hang
                return
            if not done.is_set():
                os.kill(os.getpid(), signal.SIGTERM)
        sender = threading.Thread(target=sigterm_once_running, name='test-sigterm', daemon=True)
        sender.start()
        try:
            strats = cerebro.run_live('binance', 'BTC/USDT', '1h', btl.Strategy,
                                      endpoint=sim.base_url, apikey=KEY, secret=SECRET,
                                      backfill_bars=2)
        finally:
            done.set()
            sender.join(5)
        assert strats and len(strats[0].data) >= 2
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL   # handler restored
        strats = btl.Cerebro().run_live('binance', 'BTC/USDT', '1h', btl.Strategy,
                                        endpoint=sim.base_url, backfill_bars=2, duration=0.5)
        assert strats


def test_broker_without_store(monkeypatch):
    broker = btl.brokers.BinanceBroker(paper_trading=False)
    with pytest.raises(btl.FatalError, match='needs a store'):
        broker.start()
    paper = btl.brokers.BinanceBroker()
    paper.start()
    assert paper.getcash() == 10000.0 and 'paper_trading=True' in repr(paper)


def test_testnet_mismatch_is_refused(sim):
    from helpers import KEY, SECRET
    store = BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url)
    broker = store.getbroker(paper_trading=False, testnet=False)
    with pytest.raises(btl.FatalError, match='does not match its store'):
        broker.start()
    store.stop()


def test_missing_trade_permission_rejects_and_stops_trading(sim):
    # -2015 after private calls succeeded: ccxt says DDoSProtection, the
    # exchange's code says permissions (errors.classify + ERROR_CODES).
    sim.faults.rest('create_order', 'error', error='permission')
    run = LiveRun(sim, script={6: BUY_SMALL}, max_bars=3).start()
    run.step(1)
    with pytest.raises(btl.errors.AuthenticationFailed, match='permissions for action'):
        run.join()
    assert run.rec.orders[-1][0] == 'Rejected'
    assert 'Invalid API-key, IP, or permissions' in run.rec.orders[-1][4]
    assert ('trading stopped',) == run.rec.store_msgs[-1][:1]
    assert sim.orders() == []
