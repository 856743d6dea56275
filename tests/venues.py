"""The six venues (exchange x market type) for the tests, and their simulators.

The one table of what each venue is and how the simulator serves it: test
modules read it (and pick the columns they need) rather than keep copies.
Sizes a test needs for its own scenario stay in that test, keyed by venue.
"""
import contextlib
import decimal

from backtrader_live.sim import BinanceSimulator, BybitSimulator
from backtrader_live.stores import BinanceStore, BybitStore
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
STORES = {'binance': BinanceStore, 'bybit': BybitStore}

# The instrument's id on the wire (REST parameters, stream names).
SYMBOL_ID = {'binance-spot': 'BTCUSDT', 'binance-usdm': 'BTCUSDT',
             'binance-coinm': 'BTCUSD_PERP', 'bybit-spot': 'BTCUSDT',
             'bybit-linear': 'BTCUSDT', 'bybit-inverse': 'BTCUSD'}
# The asset the account's cash is counted in: the quote coin on spot, the
# settle (margin) coin on derivatives.
SETTLE = {'binance-spot': 'USDT', 'binance-usdm': 'USDT', 'binance-coinm': 'BTC',
          'bybit-spot': 'USDT', 'bybit-linear': 'USDT', 'bybit-inverse': 'BTC'}
# ccxt's exchange id for the venue (Binance has one ccxt class per API family).
CCXT_ID = {'binance-spot': 'binance', 'binance-usdm': 'binanceusdm',
           'binance-coinm': 'binancecoinm', 'bybit-spot': 'bybit', 'bybit-linear': 'bybit',
           'bybit-inverse': 'bybit'}
# The market's amount step (BTC, or contracts).
D = decimal.Decimal
STEP = {'binance-spot': D('0.00001'), 'binance-usdm': D('0.001'), 'binance-coinm': D('1'),
        'bybit-spot': D('0.00001'), 'bybit-linear': D('0.001'), 'bybit-inverse': D('1')}
# Simulator options for a thin book (two units on each level), so that an order
# of more than that fills in parts.
THIN_BOOK = {'binance-spot': {'depth_qty': 0.02}, 'binance-usdm': {'futures_depth_qty': 0.02},
             'binance-coinm': {'futures_depth_qty': 2}, 'bybit-spot': {'depth_qty': 0.02},
             'bybit-linear': {'contract_depth_qty': 0.02},
             'bybit-inverse': {'contract_depth_qty': 200}}
# Bybit's venues in the order of its API's categories (its market types).
BYBIT = ['bybit-spot', 'bybit-linear', 'bybit-inverse']
BINANCE = ['binance-spot', 'binance-usdm', 'binance-coinm']


def exchange(venue):
    return VENUES[venue][0]


def market_type(venue):
    return VENUES[venue][1]


@contextlib.contextmanager
def venue_sim(venue, **kwargs):
    """A step-mode simulator serving ``venue``; its market clock starts at the
    wall clock, as the exchange's does (``start=`` pins it: sim/clock.py)."""
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


# The simulator's real candles: bar 7 trades down to 4174.97 (tests/test_bar_fills.py)
RESTING_BUY = 4180.0


def refused_user_stream_run(sim, venue, max_bars, **broker_kwargs):
    """A live run whose account stream the exchange refuses from the start
    (a fault), started with the market stream subscribed; bar 6 places a
    limit buy at RESTING_BUY (``strategy.order``) that bar 7 fills."""
    import backtrader_live as btl
    from helpers import eventually
    size = unit(venue)

    def buy(s):
        s.order = s.buy(size=size, price=RESTING_BUY, exectype=btl.Order.Limit)
    sim.faults.drop_ws('private', seconds=None)
    run = live_run(sim, venue, script={6: buy}, max_bars=max_bars,
                   broker_kwargs=dict(broker_kwargs, bar_fill_wait=0))
    run.start(wait_subscribed=False)
    sim.wait_subscribed(VENUES[venue][3], timeout=30)
    eventually(lambda: sim.faults.counts['ws refused'] > 0, 10)
    return run
