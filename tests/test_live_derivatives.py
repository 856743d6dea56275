"""Perpetual futures end to end against the simulator: positions that match
the exchange's after every fill, leverage and margin mode, reduce-only
closes, conditional stops and funding."""
import pytest

import backtrader_live as btl
from backtrader_live.events import CANCELED, EXPIRED, order_from_ccxt
from helpers import eventually
from livekit import LiveRun
from venues import DERIVATIVES, SETTLE
from venues import VENUES as _VENUES

# The one venue table (tests/venues.py): exchange, market_type, symbol, stream
# topic, the simulator's market name; then a small order size (BTC for linear,
# contracts of 100 USD for inverse) and the settle asset.
_SMALL = {'binance-usdm': 0.005, 'binance-coinm': 1, 'bybit-linear': 0.005, 'bybit-inverse': 100}
VENUES = {v: _VENUES[v][:5] + (_SMALL[v], SETTLE[v]) for v in DERIVATIVES}


@pytest.fixture
def venue_sim(request, sim, make_sim):
    """The simulator of the test's venue (Binance's serves every kind)."""
    venue = request.node.callspec.params['venue']
    if VENUES[venue][0] == 'bybit':
        from backtrader_live.sim import BybitSimulator
        bybit = BybitSimulator(speed=None, start_index=600)
        bybit.start()
        yield bybit
        bybit.stop()
    else:
        yield sim


def _wallet(sim, venue):
    """The settle asset's wallet balance as the exchange reports it (Bybit's
    unified account reports its spot and contract wallets together)."""
    market, settle = VENUES[venue][4], VENUES[venue][6]
    wallet = float(sim.balances(market=market)[settle]['wallet'])
    if VENUES[venue][0] == 'bybit':
        spot = sim.balances(market='spot').get(settle, {})
        wallet += float(spot.get('free', 0)) + float(spot.get('locked', 0))
    return wallet


def _run(sim, venue, **kwargs):
    exchange, market_type, symbol, topic, market = VENUES[venue][:5]
    return LiveRun(sim, exchange=exchange, symbol=symbol, topic=topic, user_market=market,
                   market_type=market_type, **kwargs)


def _sim_size(sim, market):
    positions = sim.positions(market=market)
    return float(positions[0].size) if positions else 0.0


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_open_add_partial_close_close_long_and_short(venue_sim, venue):
    sim = venue_sim
    market = VENUES[venue][4]
    seen = []

    def check(size_action):
        def step(s):
            seen.append((s.position.size, _sim_size(sim, market)))
            size_action(s)
        return step
    u, settle = VENUES[venue][5:7]
    script = {6: check(lambda s: s.buy(size=2 * u)), 7: check(lambda s: s.buy(size=2 * u)),
              8: check(lambda s: s.sell(size=u)), 9: check(lambda s: s.close()),
              10: check(lambda s: s.sell(size=4 * u)), 11: check(lambda s: s.buy(size=2 * u)),
              12: check(lambda s: s.close()), 13: check(lambda s: None)}
    start = _wallet(sim, venue)
    run = _run(sim, venue, script=script, max_bars=8,
               broker_kwargs={'leverage': 5, 'margin_mode': 'isolated'}).start()
    run.step(8)
    run.join()
    # Before each action the strategy's position is the exchange's.
    assert [ours / u for ours, _ in seen] == pytest.approx([0, 2, 4, 3, 0, -4, -2, 0])
    assert all(ours == pytest.approx(theirs) for ours, theirs in seen)
    orders = sim.orders(market=market)
    assert len(orders) == 7 and all(o.status == 'FILLED' for o in orders)
    # Only the closes (the whole position the other way) were sent reduce-only;
    # partial reductions and openings went as asked (derivatives.py).
    assert [o.reduce_only for o in orders] == [False, False, False, True, False, False, True]
    assert len(run.rec.trades) == 2
    broker = run.rec.strategy.broker
    wallet = _wallet(sim, venue)
    assert broker.getcash() == pytest.approx(wallet) and broker.getvalue() == pytest.approx(wallet)
    # backtrader's trades: PnL = the exchange's realised PnL, net of its fees
    # = the wallet's change, less any funding (the re-dated market clock
    # crosses a funding time or not depending on the hour the test runs).
    fills = sim.trades(market=market)
    # (the exchange rounds each fill's PnL to 8 decimals)
    assert sum(t[0] for t in run.rec.trades) == pytest.approx(
        sum(float(t.realized_pnl) for t in fills), abs=1e-7)
    funding = sum(float(e.amount) for e in sim.funding_events(market=market))
    assert sum(t[1] for t in run.rec.trades) == pytest.approx(wallet - start - funding, abs=1e-7)


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_leverage_and_margin_mode_are_applied(venue_sim, venue):
    sim = venue_sim
    positions = []
    u = VENUES[venue][5]
    run = _run(sim, venue, script={6: lambda s: s.buy(size=2 * u),
                                   7: lambda s: positions.extend(s.broker.store.get_positions())},
               max_bars=2, broker_kwargs={'leverage': 7, 'margin_mode': 'isolated'}).start()
    run.step(2)
    run.join()
    (pos,) = positions
    assert pos['leverage'] == 7
    if VENUES[venue][0] == 'bybit':
        # Bybit's unified account sets the margin mode account-wide.
        from helpers import KEY
        assert sim.account_margin_mode(KEY) == 'isolated'
    else:
        assert pos['margin_mode'] == 'isolated'
    assert pos['side'] == 'long' and pos['size'] == pytest.approx(2 * u)
    assert pos['liquidation_price'] and pos['liquidation_price'] < pos['entry_price']


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_reduce_only_never_flips(venue_sim, venue):
    sim = venue_sim
    market, u = VENUES[venue][4], VENUES[venue][5]
    run = _run(sim, venue, script={6: lambda s: s.buy(size=2 * u),
                                   7: lambda s: s.sell(size=6 * u, reduceOnly=True)},
               max_bars=2).start()
    run.step(2)
    run.join()
    # The exchange fills what the position allows and ends the rest (Binance
    # expires it, Bybit cancels it).
    assert run.rec.statuses()[-2:] in (['Partial', 'Expired'], ['Partial', 'Canceled'])
    assert run.rec.orders[-1][1] == pytest.approx(-2 * u)
    assert _sim_size(sim, market) == 0          # flat, never short
    strategy = run.rec.strategy
    assert strategy.broker.getposition(strategy.data).size == 0
    # What a reconcile reads over REST agrees (ccxt calls Bybit's
    # PartiallyFilledCanceled 'closed', as if it had filled).
    sell = [o for o in sim.orders(market=market) if o.side == 'SELL'][-1]
    raw = strategy.broker.store.fetch_order_by_client_id(sell.client_id, strategy.data.p.dataname)
    update = order_from_ccxt(raw)
    assert update.status in (EXPIRED, CANCELED)
    assert update.filled == pytest.approx(2 * u)


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_conditional_stop_triggered_by_the_clock(venue_sim, venue):
    sim = venue_sim
    market, u = VENUES[venue][4], VENUES[venue][5]

    def protect(s):
        s.buy(size=2 * u)
        s.stop_order = s.sell(size=2 * u, price=round(s.data.close[0] * 0.995, 1),
                        exectype=btl.Order.Stop)
    # 0.995 x 4191.53 = 4170.6: the real bar 608 (low 4158.84) crosses it.
    run = _run(sim, venue, script={6: protect}, max_bars=10).start()
    run.step(9)
    # The fill comes on the user stream, the next bar on the market stream:
    # two sockets, so wait for the fill rather than assume an order.
    eventually(lambda: run.rec.statuses().count('Completed') == 2)
    run.step(1)
    run.join()
    assert _sim_size(sim, market) == 0
    strategy = run.rec.strategy
    assert strategy.broker.getposition(strategy.data).size == 0


@pytest.mark.parametrize('kwargs,match', [
    ({'hedge_mode': True}, 'hedge_mode=True is not supported'),
    ({'margin_mode': 'crossed'}, "margin_mode must be one of isolated, cross, got 'crossed'"),
    ({'leverage': 0}, 'leverage must be a number >= 1'),
])
def test_bad_settings_are_clear_errors(sim, kwargs, match):
    from helpers import KEY, SECRET
    with pytest.raises(btl.ConfigError, match=match):
        btl.Cerebro().run_live('binance', 'BTC/USDT:USDT', '1h', btl.Strategy,
                               market_type='futures', endpoint=sim.base_url, apikey=KEY,
                               secret=SECRET, paper_trading=False, broker_kwargs=kwargs)


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_funding_reaches_cash_and_the_strategy(venue_sim, venue):
    sim = venue_sim
    market, u, settle = VENUES[venue][4:7]
    run = _run(sim, venue, script={6: lambda s: s.buy(size=10 * u)}, max_bars=10).start()
    run.step(10)                 # 10 market hours: at least one 8-hour funding time
    run.join()
    events = sim.funding_events(market=market)
    assert events
    funding = [m for m in run.rec.store_msgs if m[0] == 'funding']
    assert len(funding) == len(events)
    assert sum(m[2] for m in funding) == pytest.approx(sum(float(e.amount) for e in events))
    assert run.rec.strategy.broker.account.wallet[settle] == pytest.approx(_wallet(sim, venue))
    # The wallet over REST too (Binance's ccxt 'total' adds the unrealised PnL
    # of the open position; the account is loaded from REST at start and end).
    store = run.rec.strategy.broker.store
    assert store.get_balance_details(settle)['wallet'] == pytest.approx(_wallet(sim, venue))



@pytest.mark.parametrize('venue', sorted(VENUES))
def test_a_funding_message_sent_twice_is_one_payment(venue_sim, venue):
    """Every private message duplicated (the soak saw 'funding ...' twice)."""
    sim = venue_sim
    market, u = VENUES[venue][4:6]

    def enter(s):
        sim.faults.scramble_ws('private', duplicate=1.0)
        s.buy(size=10 * u)
    run = _run(sim, venue, script={6: enter}, max_bars=10).start()
    run.step(10)
    run.join()
    events = sim.funding_events(market=market)
    funding = [m for m in run.rec.store_msgs if m[0] == 'funding']
    assert events and len(funding) == len(events)
    assert sim.faults.counts['ws duplicated'] > 0          # the fault fired

@pytest.mark.parametrize('venue', ['binance-usdm', 'bybit-linear'])
def test_take_profit_through_the_conditional_endpoint(venue_sim, venue):
    sim, market, u = venue_sim, VENUES[venue][4], VENUES[venue][5]

    def enter(s):
        s.buy(size=2 * u)
        # 4191.53 x 1.02 = 4275.4: the real bar 603 (high 4313.18) reaches it.
        s.tp = s.sell(size=2 * u, takeProfitPrice=round(s.data.close[0] * 1.02, 1))
    run = _run(sim, venue, script={6: enter}, max_bars=6).start()
    run.step(4)
    eventually(lambda: run.rec.statuses().count('Completed') == 2)
    run.step(2)
    run.join()
    assert _sim_size(sim, market) == 0
    tp = [o for o in sim.orders(market=market) if o.side.upper() == 'SELL'][0]
    # Held by the exchange as a conditional order (Binance: an algo
    # TAKE_PROFIT_MARKET; Bybit: a triggered order with a direction).
    assert tp.extra.get('algo') or tp.extra.get('direction')
    assert run.rec.orders[-1][2] >= round(run.rec.bars[5][1] * 1.02, 1) - 1.0
