"""The six venues (exchange x market type) for broker tests, and their simulators."""
import contextlib

from backtrader_live.sim import BinanceSimulator, BybitSimulator
from livekit import LiveRun

# exchange, market_type, symbol, market stream topic, the simulator's market name,
# a small order size (BTC, or 100 USD contracts for inverse), extra simulator options
VENUES = {
    'binance-spot': ('binance', 'spot', 'BTC/USDT', 'btcusdt@kline_1h', 'spot', 0.01,
                     {'balances': {'USDT': 100000.0}}),
    'binance-usdm': ('binance', 'futures', 'BTC/USDT:USDT', 'btcusdt@kline_1h', 'futures',
                     0.01, {}),
    'binance-coinm': ('binance', 'delivery', 'BTC/USD:BTC', 'btcusd_perp@kline_1h',
                      'delivery', 1, {}),
    # The Bybit simulator reports its spot and contract wallets as one: keep
    # BTC out of the contract side so the spot position starts flat.
    'bybit-spot': ('bybit', 'spot', 'BTC/USDT', 'kline.60.BTCUSDT', 'spot', 0.01,
                   {'balances': {'USDT': 100000.0}, 'contract_balances': {'USDT': 10000.0}}),
    'bybit-linear': ('bybit', 'linear', 'BTC/USDT:USDT', 'kline.60.BTCUSDT', 'linear', 0.01,
                     {}),
    'bybit-inverse': ('bybit', 'inverse', 'BTC/USD:BTC', 'kline.60.BTCUSD', 'inverse', 100,
                      {}),
}
ALL = sorted(VENUES)
DERIVATIVES = [v for v in ALL if VENUES[v][1] != 'spot']
SIMS = {'binance': BinanceSimulator, 'bybit': BybitSimulator}


@contextlib.contextmanager
def venue_sim(venue, **kwargs):
    """A step-mode simulator serving ``venue``."""
    options = dict(VENUES[venue][6], speed=None, start_index=600)
    options.update(kwargs)
    with SIMS[VENUES[venue][0]](**options) as sim:
        yield sim


def live_run(sim, venue, **kwargs):
    exchange, market_type, symbol, topic, market = VENUES[venue][:5]
    return LiveRun(sim, exchange=exchange, symbol=symbol, topic=topic, user_market=market,
                   market_type=market_type, **kwargs)


def unit(venue):
    return VENUES[venue][5]


def sim_orders(sim, venue):
    return sim.orders(market=VENUES[venue][4])


def sim_position(sim, venue):
    """The exchange's position: contracts (signed), or the spot coin held."""
    market = VENUES[venue][4]
    if market == 'spot':
        held = sim.balances(market='spot').get('BTC', {})
        return float(held.get('free', 0)) + float(held.get('locked', 0))
    positions = sim.positions(market=market)
    return float(positions[0].size) if positions else 0.0
