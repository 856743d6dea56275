"""The order lifecycle on every exchange and market type: partial fills then
Completed, a resting limit cancelled, a rejection with the exchange's reason."""
import pytest

import backtrader_live as btl
from backtrader_live.sim import BinanceSimulator, BybitSimulator
from livekit import LiveRun

# exchange, market_type, symbol, topic, user market, size unit, sim kwargs for a thin book
VENUES = {
    'binance-spot': ('binance', 'spot', 'BTC/USDT', 'btcusdt@kline_1h', 'spot', 0.01,
                     {'depth_qty': 0.02, 'balances': {'USDT': 100000.0}}),
    'binance-usdm': ('binance', 'futures', 'BTC/USDT:USDT', 'btcusdt@kline_1h', 'futures', 0.01,
                     {'futures_depth_qty': 0.02}),
    'binance-coinm': ('binance', 'delivery', 'BTC/USD:BTC', 'btcusd_perp@kline_1h', 'delivery',
                      1, {'futures_depth_qty': 2}),
    'bybit-spot': ('bybit', 'spot', 'BTC/USDT', 'kline.60.BTCUSDT', 'spot', 0.01,
                   {'depth_qty': 0.02, 'balances': {'USDT': 100000.0},
                    'contract_balances': {'USDT': 10000.0}}),
    'bybit-linear': ('bybit', 'linear', 'BTC/USDT:USDT', 'kline.60.BTCUSDT', 'linear', 0.01,
                     {'contract_depth_qty': 0.02}),
    'bybit-inverse': ('bybit', 'inverse', 'BTC/USD:BTC', 'kline.60.BTCUSD', 'inverse', 100,
                      {'contract_depth_qty': 200}),
}
SIMS = {'binance': BinanceSimulator, 'bybit': BybitSimulator}


def _lifecycle_run(venue, script, max_bars):
    exchange, market_type, symbol, topic, user, _, extra = VENUES[venue]
    with SIMS[exchange](speed=None, start_index=600, **extra) as sim:
        run = LiveRun(sim, exchange=exchange, symbol=symbol, topic=topic, user_market=user,
                      market_type=market_type, script=script, max_bars=max_bars).start()
        run.step(max_bars)
        run.join()
        return run, sim.orders(market=user) if exchange == 'binance' or user != 'spot' \
            else sim.orders(market='spot')


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_partial_fills_then_completed(venue):
    u = VENUES[venue][5]
    run, orders = _lifecycle_run(venue, {6: lambda s: s.buy(size=5 * u)}, 2)
    statuses = run.rec.statuses()
    assert statuses[:2] == ['Submitted', 'Accepted'] and statuses[-1] == 'Completed'
    assert statuses.count('Partial') >= 2, statuses
    (order,) = orders
    assert order.status in ('FILLED', 'Filled') and float(order.executed) == pytest.approx(5 * u)


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_resting_limit_is_cancelled(venue):
    u = VENUES[venue][5]

    def place(s):
        s.order = s.buy(size=u, price=round(s.data.close[0] * 0.8, 1), exectype=btl.Order.Limit)
    run, orders = _lifecycle_run(venue, {6: place, 7: lambda s: s.cancel(s.order)}, 3)
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Canceled']
    (order,) = orders
    assert order.status.upper().startswith('CANCEL')


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_rejection_carries_the_exchanges_reason(venue):
    u, coin_margined = VENUES[venue][5], VENUES[venue][1] in ('delivery', 'inverse')
    # Far more than the account can pay for (or margin, at the default leverage).
    big = (1000 if coin_margined else 100000) * u
    run, orders = _lifecycle_run(venue, {6: lambda s: s.buy(size=big)}, 1)
    status, _, _, _, reason = run.rec.orders[-1]
    assert status == 'Rejected'
    assert any(w in reason.lower() for w in ('insufficient', 'margin', 'balance', 'exceed')), reason
    assert len(run.rec.bars) == 6       # the strategy went on
