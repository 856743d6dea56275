"""The generic tier (ccxt + ccxt.pro) against the simulators: venues and runs.

Binance and Bybit are served through ``'ccxt:<id>'``, i.e. ccxt.pro's own
WebSocket clients speak to the simulators' protocols. Only URLs are data
here: the simulator serves COIN-M under /dapi and tells Binance's spot socket
by '/stream' (docs/simulator.md); Bybit needs nothing beyond the origin.
"""
from venues import VENUES, venue_sim  # noqa: F401  (re-exported for the tests)
from livekit import LiveRun

GENERIC_VENUES = ['binance-spot', 'binance-usdm', 'bybit-spot', 'bybit-linear']

WS_URLS = {'binance': {'spot': '/stream', 'inverse': '/dapi/ws', 'ws-api.spot': '/ws-api/v3'},
           'bybit': {}}


def generic_store_kwargs(venue, **extra):
    return dict({'ws_urls': WS_URLS[VENUES[venue][0]]}, **extra)


def generic_run(sim, venue, store_kwargs=None, **kwargs):
    """``run_live('ccxt:<exchange>', ...)`` in a thread (livekit.LiveRun)."""
    exchange, market_type, symbol, topic, market = VENUES[venue][:5]
    return LiveRun(sim, exchange='ccxt:' + exchange, symbol=symbol, topic=topic,
                   user_market=market, market_type=market_type,
                   store_kwargs=generic_store_kwargs(venue, **(store_kwargs or {})), **kwargs)


def generic_scenario(sim, venue, before_step=None, steps=None, store=None, streams=True,
                     **kwargs):
    """faultkit.scenario on the generic tier: the fault matrix's script for
    ``steps`` live bars; ``before_step[i](sim, run)`` before live bar i closes."""
    from faultkit import FAST, LIVE_BARS, SCRIPT, Tracked, drive
    steps = LIVE_BARS if steps is None else steps
    run = generic_run(sim, venue, strategy=Tracked, script=kwargs.pop('script', SCRIPT),
                      backfill_bars=5, max_bars=steps,
                      store_kwargs=dict(FAST, **dict({"stream_timeout": 5.0}, **(store or {}))),
                      **kwargs)
    # polled (no stream): nothing to wait for
    return drive(run, sim, steps, before_step, wait_subscribed=streams)


def check_venue(run, sim, venue):
    """faultkit's invariants (orders == the strategy's, each fill once at the
    exchange's size and price, bars once and in order, the run survived) and
    the position is the exchange's, on any of the four venues."""
    import pytest
    from faultkit import check
    from venues import sim_position
    market = VENUES[venue][4]
    outcome = check(run, sim, VENUES[venue][0], market)
    assert run.rec.strategy.position.size == pytest.approx(sim_position(sim, venue), abs=1e-5)
    check_bar_values(run, sim)
    if market != 'spot':
        # the wallet the broker counts PnL on is the exchange's (not margin balance)
        wallet = float(sim.balances(market=market)['USDT']['wallet'])
        if VENUES[venue][0] == 'bybit':
            # A unified account: one USDT wallet for spot and contracts (the
            # simulator keeps the two parts apart; the native tier sees the sum too).
            spot = sim.balances(market='spot').get('USDT', {})
            wallet += float(spot.get('free', 0)) + float(spot.get('locked', 0))
        assert run.rec.strategy.broker.account.wallet['USDT'] == pytest.approx(wallet)
    return outcome


def check_bar_values(run, sim):
    """Every bar the strategy saw has the closed candle's final close (never
    a forming candle's): ccxt.pro hands out forming candles too."""
    import datetime
    import pytest
    feed = sim.clock.feeds['BTCUSDT']
    start = int(run.rec.bars[0][0].replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    rows, last_closed = sim._call(lambda: feed.bars('1h', sim.clock.now, start=start))
    closes = [float(r[4]) for r in (rows if last_closed else rows[:-1])]
    assert [b[1] for b in run.rec.bars] == pytest.approx(closes[:len(run.rec.bars)])


class LateClosingUpdates:
    """A market-stream fault made certain, test side: in every batch that
    crosses a candle boundary, the newest candle's update goes out first and
    the updates of the candles before it (their final values) ``delay``
    seconds later. ``scramble_ws`` makes this reorder only by chance (and the
    client must also wake between the two); here it happens at every bar.
    The simulator is not edited: its ``faults.outgoing`` hook is wrapped on
    the instance (it runs on the simulator's loop). ``swapped`` counts it."""

    def __init__(self, sim, delay=0.1):
        self.sim, self.delay, self.swapped = sim, delay, 0
        self._outgoing = sim.faults.outgoing
        sim.faults.outgoing = self.outgoing

    def outgoing(self, batch):
        import asyncio
        batch = self._outgoing(batch)
        starts = [_kline_start(text) for _, text in batch]
        if len({s for s in starts if s is not None}) < 2:
            return batch
        newest = max(s for s in starts if s is not None)
        first = [item for item, s in zip(batch, starts) if s is None or s >= newest]
        late = [item for item, s in zip(batch, starts) if s is not None and s < newest]
        self.swapped += 1
        asyncio.get_running_loop().call_later(
            self.delay, lambda: asyncio.ensure_future(self._send(late)))
        return first

    @staticmethod
    async def _send(items):
        for ws, text in items:
            if not ws.closed:
                await ws.send_str(text)


def _kline_start(text):
    """Open time of the candle in a Binance or Bybit kline message, else None."""
    import json
    msg = json.loads(text)
    data = msg.get('data', msg) if isinstance(msg, dict) else None
    if isinstance(data, dict) and isinstance(data.get('k'), dict):
        return int(data['k']['t'])                                  # Binance
    if isinstance(msg, dict) and str(msg.get('topic', '')).startswith('kline.'):
        return int(data[0]['start'])                                # Bybit
    return None
