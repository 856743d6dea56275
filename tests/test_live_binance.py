"""Binance spot live trading end to end: real ccxt + websocket-client against
the simulator in step mode (the test moves the market clock)."""
import logging

import pytest

import backtrader_live as btl
from helpers import eventually
from livekit import LiveRun

BUY_SMALL = lambda s: s.buy(size=0.01)            # noqa: E731
CLOSE = lambda s: s.close()                       # noqa: E731


def test_unchanged_strategy_trades_through_run_live(sim):
    run = LiveRun(sim, script={6: BUY_SMALL, 8: CLOSE}, backfill_bars=5, max_bars=4).start()
    run.step(4)
    strategies = run.join()
    rec = run.rec
    assert strategies[0] is rec.strategy                      # what run() returns
    assert len(rec.bars) == 9
    assert rec.statuses() == ['Submitted', 'Accepted', 'Completed'] * 2
    # Both orders exist on the exchange side, with our client ids, filled.
    orders = sim.orders()
    assert [(o.side, o.status) for o in orders] == [('BUY', 'FILLED'), ('SELL', 'FILLED')]
    assert all(o.client_id.startswith('btl') for o in orders)
    # The buy's fee was taken in BTC: the position is the BTC actually held,
    # and closing it sold exactly that, leaving no dust.
    assert rec.positions[6] == pytest.approx(0.01 * (1 - 0.001))
    assert rec.positions[-1] == 0
    assert float(sim.balances()['BTC']['free']) == 0
    assert len(rec.trades) == 1
    assert rec.data_status[:2] == ['DELAYED', 'LIVE']


def test_bars_are_closed_ones_exactly_once_and_in_order(sim):
    run = LiveRun(sim, backfill_bars=20, max_bars=6).start()
    closed = []
    for _ in range(6):
        closed += sim.step()
        eventually(lambda: len(run.rec.bars) == 20 + len(closed))
    run.join()
    times = [b[0] for b in run.rec.bars]
    assert times == sorted(set(times))                        # no duplicate, in order
    live = run.rec.bars[20:]
    assert [round(b[1], 8) for b in live] == [float(r[4]) for r in closed]


def test_partial_fills_then_completed(make_sim):
    sim = make_sim(depth_qty=0.02, balances={'USDT': 100000.0})
    run = LiveRun(sim, script={6: lambda s: s.buy(size=0.05)}, max_bars=2).start()
    run.step(2)
    run.join()
    statuses = run.rec.statuses()
    assert statuses[:2] == ['Submitted', 'Accepted']
    assert statuses.count('Partial') >= 2 and statuses[-1] == 'Completed'
    trades = sim.trades()
    assert len(trades) >= 3
    done = run.rec.orders[-1]
    gross = sum(float(t.qty) for t in trades)
    assert gross == pytest.approx(0.05)
    assert done[1] == pytest.approx(gross * (1 - 0.001))         # net of the BTC fee
    vwap = sum(float(t.qty) * float(t.price) for t in trades) / gross
    assert done[2] == pytest.approx(vwap, rel=1e-9)


def test_limit_order_rests_then_cancel(sim):
    def place(s):
        s.order = s.buy(size=0.01, price=round(s.data.close[0] * 0.5, 2), exectype=btl.Order.Limit)

    run = LiveRun(sim, script={6: place, 7: lambda s: s.cancel(s.order)}, max_bars=3).start()
    run.step(3)
    run.join()
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Canceled']
    (order,) = sim.orders()
    assert order.status == 'CANCELED' and order.type == 'LIMIT'


def test_insufficient_balance_is_rejected_with_the_reason(sim):
    run = LiveRun(sim, script={6: lambda s: s.buy(size=50.0)}, max_bars=2).start()
    run.step(2)
    run.join()
    status, _, _, _, reason = run.rec.orders[-1]
    assert status == 'Rejected'
    assert 'insufficient balance' in reason.lower()
    assert len(run.rec.bars) == 7            # the strategy kept running


def test_below_the_minimum_is_rejected_before_sending(sim):
    run = LiveRun(sim, script={6: lambda s: s.buy(size=0.0001)}, max_bars=1).start()
    run.step(1)
    run.join()
    status, _, _, _, reason = run.rec.orders[-1]
    assert status == 'Rejected' and 'below the minimum' in reason
    assert sim.orders() == []                 # nothing reached the exchange


def test_stop_order_triggered_by_the_market_clock(sim):
    def stop_buy(s):
        s.buy(size=0.01, price=round(s.data.close[0] * 1.01, 2), exectype=btl.Order.Stop)

    run = LiveRun(sim, script={6: stop_buy}, max_bars=8).start()
    run.step(8)
    run.join()
    (order,) = sim.orders()
    assert order.type == 'STOP_LOSS'
    statuses = run.rec.statuses()
    assert statuses[:2] == ['Submitted', 'Accepted']
    # The replayed bar 602 of the real data (high 4307.54) crosses the trigger.
    assert order.status == 'FILLED' and statuses[-1] == 'Completed'
    assert run.rec.orders[-1][2] >= round(run.rec.bars[5][1] * 1.01, 2)


def test_paper_trading_sends_nothing(sim):
    # Paper fills at the next bar's open, as in a backtest: close on bar 7.
    run = LiveRun(sim, script={6: BUY_SMALL, 7: CLOSE}, max_bars=3, paper_trading=True,
                  cash=5000.0).start()
    run.step(3)
    run.join()
    assert sim.orders() == []
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Completed'] * 2
    assert run.rec.strategy.broker.startingcash == 5000.0
    # Commission from the market's taker fee (0.1%), at the next bar's open.
    _, size, price, comm, _ = run.rec.orders[2]
    assert comm == pytest.approx(abs(size) * price * 0.001)


def test_reconnect_backfills_missed_bars_once(sim):
    run = LiveRun(sim, backfill_bars=5, max_bars=5).start()
    run.step(1)
    sim.close_ws_connections()
    missed = sim.step(2)                      # closed while we were away
    sim.wait_subscribed('btcusdt@kline_1h', timeout=10)
    eventually(lambda: len(run.rec.bars) == 8, 10)
    run.step(2)
    run.join()
    times = [b[0] for b in run.rec.bars]
    assert times == sorted(set(times)) and len(times) == 10
    assert 'CONNBROKEN' in run.rec.data_status
    assert run.rec.data_status[-1] in ('LIVE', 'DISCONNECTED')
    assert [round(b[1], 8) for b in run.rec.bars[6:8]] == [float(r[4]) for r in missed]


def test_secrets_never_reach_logs_or_reprs(sim, caplog):
    from helpers import KEY, SECRET
    caplog.set_level(logging.DEBUG)
    run = LiveRun(sim, script={6: lambda s: s.buy(size=50.0)}, max_bars=1).start()
    run.step(1)
    run.join()
    store = run.rec.strategy.broker.store
    texts = [caplog.text, repr(store), str(store), repr(run.rec.strategy.broker),
             repr(store._creds), repr(run.rec.strategy.data)]
    for text in texts:
        assert SECRET not in text
        assert KEY not in text


def test_wrong_secret_is_one_clear_error_without_retries(sim, caplog):
    from helpers import KEY
    calls = []
    store = btl.stores.BinanceStore.get_instance(apikey=KEY, secret='wrong-secret-xyz',
                                                 endpoint=sim.base_url)
    original = store.exchange.fetch2

    def counting(*args, **kwargs):        # observes ccxt's requests, changes nothing
        calls.append(args[0])
        return original(*args, **kwargs)
    store.exchange.fetch2 = counting
    with pytest.raises(btl.AuthenticationFailed) as err:
        btl.Cerebro().run_live('binance', 'BTC/USDT', '1h', btl.Strategy, endpoint=sim.base_url,
                               apikey=KEY, secret='wrong-secret-xyz', paper_trading=False)
    assert 'Signature' in str(err.value)
    assert 'wrong-secret-xyz' not in str(err.value) and 'wrong-secret-xyz' not in caplog.text
    assert calls.count('account') == 1


@pytest.mark.parametrize('kwargs,match', [
    (dict(exchange='nosuchexchange'),
     "unknown exchange 'nosuchexchange'; native exchanges: binance, bybit; or any ccxt"),
    (dict(symbol='FOO/BAR'), "unknown symbol 'FOO/BAR'"),
    (dict(timeframe='7m'), 'unknown timeframe .* valid timeframes: 1m, 3m'),
    (dict(market_type='options'),
     "unknown market_type 'options' for binance; valid: coinm, delivery, future, futures, "
     "inverse, linear, spot, swap, usdm"),
    (dict(market_type='futures'), r"unknown symbol 'BTC/USDT' on binance futures \('BTC/USDT' "
     r"looks like a spot symbol; linear symbols look like 'BTC/USDT:USDT'\)"),
    (dict(max_bars=0), 'max_bars must be a positive integer'),
    (dict(duration=-1), 'duration must be a positive number'),
])
def test_bad_input_is_a_clear_error(sim, kwargs, match):
    args = dict(exchange='binance', symbol='BTC/USDT', timeframe='1h')
    args.update({k: kwargs.pop(k) for k in list(kwargs) if k in args})
    with pytest.raises(btl.ConfigError, match=match):
        btl.Cerebro().run_live(args['exchange'], args['symbol'], args['timeframe'], btl.Strategy,
                               endpoint=sim.base_url, **kwargs)


def test_live_trading_needs_keys(sim, monkeypatch):
    monkeypatch.delenv('BINANCE_API_KEY', raising=False)
    monkeypatch.delenv('BINANCE_API_SECRET', raising=False)
    with pytest.raises(btl.FatalError, match='needs an API key and secret'):
        btl.Cerebro().run_live('binance', 'BTC/USDT', '1h', btl.Strategy,
                               endpoint=sim.base_url, paper_trading=False, backfill_bars=1)


def test_keys_from_the_environment(sim, monkeypatch):
    from helpers import KEY, SECRET
    monkeypatch.setenv('BINANCE_API_KEY', KEY)
    monkeypatch.setenv('BINANCE_API_SECRET', SECRET)
    store = btl.stores.BinanceStore.get_instance(endpoint=sim.base_url)
    assert store.has_credentials and store.test_connection() is True
    assert store.get_balance('USDT') == 10000.0
    assert store.get_open_orders('BTC/USDT') == []
    assert store.get_positions() == []


def test_fee_dust_does_not_keep_a_position_open(sim):
    # 0.01234 BTC bought, 0.00001234 BTC fee: 0.01232766 held, but the market
    # step (0.00001) only lets 0.01232 be sold. The crumb cannot be traded, so
    # the close flattens the position and backtrader's trade closes.
    run = LiveRun(sim, script={6: lambda s: s.buy(size=0.01234), 8: CLOSE}, max_bars=4).start()
    run.step(4)
    run.join()
    assert run.rec.positions[6] == pytest.approx(0.01232766)
    assert run.rec.positions[-1] == 0
    assert len(run.rec.trades) == 1
    sold = [o for o in sim.orders() if o.side == 'SELL'][0]
    assert float(sold.qty) == 0.01232
    assert float(sim.balances()['BTC']['free']) == pytest.approx(0.00000766)
    # The crumb is still worth something, and the account value says so.
    broker = run.rec.strategy.broker
    assert broker.getvalue() == pytest.approx(
        broker.getcash() + 0.00000766 * run.rec.bars[-1][1])


def test_two_feeds_on_one_store(make_sim):
    # backtrader's data objects overload ==: the live layer must compare by identity.
    from helpers import KEY, SECRET
    sim = make_sim()
    store = btl.stores.BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url)
    seen = []

    class Both(btl.Strategy):
        def next(self):
            seen.append((len(self.datas[0]), len(self.datas[1])))

    cerebro = btl.Cerebro()
    for symbol in ('BTC/USDT', 'ETH/BTC'):
        cerebro.adddata(store.getdata(dataname=symbol, tf='1h', backfill_bars=3, live=False))
    cerebro.setbroker(store.getbroker(paper_trading=False))
    cerebro.addstrategy(Both)
    try:
        cerebro.run()
    finally:
        store.stop()
    assert seen and seen[-1] == (3, 3)
