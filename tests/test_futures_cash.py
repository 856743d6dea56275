"""Futures cash follows the leverage the exchange has for the symbol, read
at start even with no position (the run passes no ``leverage``), and kept
current when it changes during the run (Binance ACCOUNT_CONFIG_UPDATE, Bybit's
position topic): ``getcash()`` is what the exchange says is available."""
import pytest

from backtrader_live.events import LeverageUpdate, PositionUpdate
from backtrader_live.sim import BybitSimulator
from helpers import KEY, SECRET, eventually
from livekit import LiveRun
from venues import DERIVATIVES, SETTLE, STORES
from venues import VENUES as _VENUES

# The one venue table (tests/venues.py): exchange, market_type, symbol, topic,
# the simulator's market name; then a big size (margin at 1x would be several
# times the wallet) and the settle asset.
_BIG = {'binance-usdm': 10, 'binance-coinm': 150, 'bybit-linear': 10, 'bybit-inverse': 15000}
VENUES = {v: _VENUES[v][:5] + (_BIG[v], SETTLE[v]) for v in DERIVATIVES}


@pytest.fixture
def venue_sim(request, sim):
    if VENUES[request.node.callspec.params['venue']][0] == 'bybit':
        # Nothing in the spot wallet: the unified account's settle coin is the
        # contract wallet alone, so "available" is the contract engine's.
        with BybitSimulator(speed=None, start_index=600, balances={}) as bybit:
            yield bybit
    else:
        yield sim


def _set_leverage_elsewhere(sim, venue, leverage):
    """What the user does on the website: a separate client sets the leverage."""
    exchange, market_type, symbol = VENUES[venue][:3]
    other = STORES[exchange](apikey=KEY, secret=SECRET, endpoint=sim.base_url,
                             market_type=market_type)
    try:
        other.set_leverage(symbol, leverage)
    finally:
        other.stop()


def _available(sim, venue):
    market, settle = VENUES[venue][4], VENUES[venue][6]
    return float(sim.balances(market=market)[settle]['available'])


def _tolerance(strategy, venue, leverage):
    """Fees, and the margin of the price move since entry: the exchange
    counts initial margin at the entry price, we at the bar's close."""
    rules = strategy.broker._rules(strategy.data)
    pos = strategy.broker.getposition(strategy.data)
    price = strategy.data.close[0]
    if rules.inverse:
        at_entry = abs(pos.size) * rules.contract_size / pos.price
        now = abs(pos.size) * rules.contract_size / price
    else:
        at_entry = now = abs(pos.size) * rules.contract_size
        at_entry, now = at_entry * pos.price, now * price
    return abs(now - at_entry) / leverage + 2 * rules.taker_fee * at_entry


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_cash_uses_the_exchanges_leverage_even_when_flat_at_start(venue_sim, venue):
    sim = venue_sim
    exchange, market_type, symbol, topic, market, size = VENUES[venue][:6]
    _set_leverage_elsewhere(sim, venue, 10)
    seen = {}

    def look(s, name):
        seen[name] = (s.broker.getcash(), _available(sim, venue), _tolerance(s, venue, 10))
    run = LiveRun(sim, exchange=exchange, symbol=symbol, topic=topic, user_market=market,
                  market_type=market_type, max_bars=2,
                  script={6: lambda s: s.buy(size=size), 7: lambda s: look(s, 'open')}).start()
    run.step(2)
    run.join()
    assert run.rec.statuses()[-1] == 'Completed'
    assert run.rec.positions[-1] == pytest.approx(size)
    cash, available, tolerance = seen['open']
    # At 1x the margin alone would be several wallets: cash far below zero.
    assert available > 0
    assert cash == pytest.approx(available, abs=tolerance)


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_a_leverage_change_during_the_run_reaches_cash(venue_sim, venue):
    sim = venue_sim
    exchange, market_type, symbol, topic, market, size = VENUES[venue][:6]
    _set_leverage_elsewhere(sim, venue, 10)
    seen = {}

    def look(s, name, leverage):
        seen[name] = (s.broker.getcash(), _available(sim, venue),
                      _tolerance(s, venue, leverage))
    run = LiveRun(sim, exchange=exchange, symbol=symbol, topic=topic, user_market=market,
                  market_type=market_type, max_bars=3,
                  script={6: lambda s: s.buy(size=size), 7: lambda s: look(s, 'at 10x', 10),
                          8: lambda s: look(s, 'at 5x', 5)}).start()
    run.step(2)
    # Listening beside the broker: its listener comes first, so an event seen
    # here is already on the broker's queue, for its next round.
    heard = []
    run.rec.strategy.broker.store.subscribe_user(heard.append)
    _set_leverage_elsewhere(sim, venue, 5)

    def announced():
        return any(isinstance(e, LeverageUpdate) or
                   (isinstance(e, PositionUpdate) and e.leverage == 5) for e in heard)
    eventually(announced, 10)
    run.step(1)
    run.join()
    for name in ('at 10x', 'at 5x'):
        cash, available, tolerance = seen[name]
        assert cash == pytest.approx(available, abs=tolerance), name
    # Half the leverage, twice the margin: less cash.
    assert seen['at 5x'][1] < seen['at 10x'][1]


def test_a_leverage_the_exchange_does_not_name_is_1x_with_a_warning(sim, caplog, monkeypatch):
    store = STORES['binance'](apikey=KEY, secret=SECRET, endpoint=sim.base_url,
                         market_type='futures')
    try:
        assert store.current_leverage('BTC/USDT:USDT') == 20.0     # the simulator's default
        monkeypatch.setattr(store, 'leverage_setting', lambda symbol: None)
        assert store.current_leverage('BTC/USDT:USDT') == 1.0
        assert 'reports no leverage for BTC/USDT:USDT: counting margin at 1x' in caplog.text
    finally:
        store.stop()


def test_account_config_updates_other_than_leverage_are_not_events(sim):
    from backtrader_live.stores import _binance_futures as futures
    store = STORES['binance'](apikey=KEY, secret=SECRET, endpoint=sim.base_url,
                         market_type='futures')
    try:
        store.get_markets()
        # multi-assets mode switched: nothing about a symbol's leverage
        assert futures.account_config_update(
            store, {'e': 'ACCOUNT_CONFIG_UPDATE', 'E': 1, 'T': 1, 'ai': {'j': True}}) == ()
        (event,) = futures.account_config_update(
            store, {'e': 'ACCOUNT_CONFIG_UPDATE', 'E': 1, 'T': 1,
                    'ac': {'s': 'BTCUSDT', 'l': 25}})
        assert event == LeverageUpdate('BTC/USDT:USDT', 25.0, 1)
    finally:
        store.stop()
