"""The same unchanged strategy on Binance and Bybit through run_live, with
only the exchange name changed (and the market's symbol for contracts)."""
import backtrader
import pytest

from backtrader_live.sim import BinanceSimulator, BybitSimulator
from livekit import LiveRun, Recording

SIMS = {'binance': BinanceSimulator, 'bybit': BybitSimulator}
TOPICS = {('binance', 'spot'): 'btcusdt@kline_1h', ('bybit', 'spot'): 'kline.60.BTCUSDT',
          ('binance', 'futures'): 'btcusdt@kline_1h', ('bybit', 'futures'): 'kline.60.BTCUSDT'}
USER = {('binance', 'spot'): 'spot', ('bybit', 'spot'): 'spot',
        ('binance', 'futures'): 'futures', ('bybit', 'futures'): 'linear'}


class SmaCross(Recording):
    """A plain upstream strategy: no knowledge of exchanges at all."""
    params = (('size', 0.01),)

    def __init__(self):
        super().__init__()
        self.cross = backtrader.ind.CrossOver(backtrader.ind.SMA(period=3),
                                              backtrader.ind.SMA(period=6))

    def next(self):
        self.p.rec.positions.append(self.position.size)
        if not self.position and self.cross > 0:
            self.buy(size=self.p.size)
        elif self.position and self.cross < 0:
            self.close()
        self.p.rec.bars.append((self.data.datetime.datetime(0), self.data.close[0]))


@pytest.mark.parametrize('market_type', ['spot', 'futures'])
@pytest.mark.parametrize('exchange', ['binance', 'bybit'])
def test_same_strategy_on_both_exchanges(exchange, market_type):
    symbol = 'BTC/USDT' if market_type == 'spot' else 'BTC/USDT:USDT'
    # The Bybit simulator keeps a contract wallet beside the spot one and
    # reports their sum (docs/simulator.md): give it no coin we trade spot.
    extra = {'contract_balances': {'USDT': 10000}} if exchange == 'bybit' else {}
    with SIMS[exchange](speed=None, start_index=600, **extra) as sim:
        run = LiveRun(sim, exchange=exchange, symbol=symbol, market_type=market_type,
                      topic=TOPICS[exchange, market_type], user_market=USER[exchange, market_type],
                      strategy=SmaCross, backfill_bars=10, max_bars=40, warmup=7,
                      strategy_params=None,
                      # Start-up unthrottled and no bar-fill look-up: the first
                      # order goes out moments after the user stream connects.
                      # Before the stream counted as LIVE only once the exchange
                      # answered its subscription, an order sent in between had
                      # its events sent to no one and never settled on Bybit
                      # (test_user_subscription.py holds that window open).
                      store_kwargs={'rate_limit_burst': 500.0},
                      broker_kwargs={'bar_fill_wait': 0}).start()
        run.step(40)
        run.join()
    rec = run.rec
    assert len(rec.bars) == 50 - 6          # the cross of SMA(6) needs 6 bars first
    assert rec.trades, 'the SMA cross should have traded on 40 real hourly bars'
    assert 'Rejected' not in rec.statuses()
    # every round trip closed (the last may still be open at the end)
    assert rec.statuses().count('Completed') in (2 * len(rec.trades), 2 * len(rec.trades) + 1)


def test_bybit_refuses_timeframes_it_does_not_serve():
    import backtrader_live as btl
    with BybitSimulator(speed=None) as sim:
        with pytest.raises(btl.ConfigError, match=r"unknown timeframe '8h'; valid timeframes: "
                                                  r"1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h, 1d, "
                                                  r"1w, 1M"):
            btl.Cerebro().run_live('bybit', 'BTC/USDT', '8h', btl.Strategy,
                                   endpoint=sim.base_url)


def test_bybit_stream_urls_for_the_real_exchange():
    from backtrader_live.stores import BybitStore
    store = BybitStore(market_type='inverse', testnet=False)
    assert store.market_ws_url() == 'wss://stream.bybit.com/v5/public/inverse'
    assert store.user_ws_url() == 'wss://stream.bybit.com/v5/private'
    test = BybitStore(market_type='futures', testnet=True)
    assert test.market_ws_url() == 'wss://stream-testnet.bybit.com/v5/public/linear'
    assert 'api-testnet' in test.exchange.urls['api']['public']
