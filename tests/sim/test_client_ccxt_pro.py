"""ccxt.pro (binance, binanceusdm, binancecoinm), unmodified, against the simulator.

Only URLs change. Two path notes, both documented in docs/simulator.md: COIN-M
streams live under ``/dapi`` (one port serves three venues), and ccxt.pro tells a
spot socket from a futures one by ``/stream`` in its URL, which the real host
name (``stream.binance.com``) carries; on 127.0.0.1 the spot base is ``<sim>/stream``.

Streams speak when the market clock moves (as Binance's do every 100 ms - 2 s), so
each watch is started, its subscription awaited, then the clock advanced.
"""
import asyncio
import re

import ccxt.pro
import pytest

from simutil import KEY, SECRET
from venues import BINANCE, CCXT_ID, SETTLE
from venues import VENUES as _VENUES

# The one venue table (tests/venues.py), keyed by Binance's API family: ccxt.pro
# class, symbol, the test's order size, settle asset, the simulator's market.
_QTY = {'binance-spot': 0.01, 'binance-usdm': 0.01, 'binance-coinm': 1}
_FAMILY = {'binance-spot': 'spot', 'binance-usdm': 'usdm', 'binance-coinm': 'coinm'}
VENUES = {_FAMILY[v]: (getattr(ccxt.pro, CCXT_ID[v]), _VENUES[v][2], _QTY[v], SETTLE[v],
                       _VENUES[v][4]) for v in BINANCE}


def point_pro(ex, sim):
    for key, url in list(ex.urls['api'].items()):
        if isinstance(url, str):
            ex.urls['api'][key] = re.sub(r'^https://[^/]+', sim.base_url, url)
    ws = ex.urls['api']['ws']
    ws.update({'spot': sim.ws_url + '/stream', 'linear': sim.ws_url + '/ws',
               'inverse': sim.ws_url + '/dapi/ws'})
    ws['ws-api']['spot'] = sim.ws_url + '/ws-api/v3'
    return ex


def stream_names(sim):
    return sim._call(lambda: [n for c in sim.streams.conns for n in c.streams])


async def watched(sim, coro, part, seconds=1):
    """Start a watch, wait for its subscription, move the clock, return its result."""
    task = asyncio.ensure_future(coro)
    for _ in range(500):
        if any(part in n for n in stream_names(sim)):
            break
        await asyncio.sleep(0.01)
    else:
        task.cancel()
        raise AssertionError('no stream with %r in %s' % (part, stream_names(sim)))
    await asyncio.to_thread(sim.advance, seconds)
    return await asyncio.wait_for(task, 5)


@pytest.mark.parametrize('venue', list(VENUES))
def test_ccxt_pro_session(sim, venue):
    cls, symbol, qty, settle, user_market = VENUES[venue]

    async def session():
        ex = point_pro(cls({'apiKey': KEY, 'secret': SECRET, 'options': {
            'fetchCurrencies': False, 'fetchMargins': False}}), sim)
        try:
            await ex.load_markets()
            ticker = await watched(sim, ex.watch_ticker(symbol), 'icker')
            assert ticker['symbol'] == symbol and ticker['last'] > 0
            candles = await watched(sim, ex.watch_ohlcv(symbol, '1m'), '@kline_1m', 60)
            assert candles[-1][0] % 60000 == 0
            book = await watched(sim, ex.watch_order_book(symbol, limit=5), '@depth')
            # two minutes later the diff stream has kept the local book in sync
            book = await watched(sim, ex.watch_order_book(symbol, limit=5), '@depth', 120)
            rest = await ex.fetch_order_book(symbol, limit=5)
            assert book['bids'][0] == rest['bids'][0] and book['asks'][0] == rest['asks'][0]
            assert book['bids'][0][0] < book['asks'][0][0]
            orders = asyncio.ensure_future(ex.watch_orders(symbol))
            trades = asyncio.ensure_future(ex.watch_my_trades(symbol))
            balance = asyncio.ensure_future(ex.watch_balance())
            await asyncio.to_thread(sim.wait_user_subscribed, count=1,
                                    market=user_market)
            price = float(ex.price_to_precision(symbol, ticker['last'] * 0.9))
            limit = await ex.create_order(symbol, 'limit', 'buy', qty, price)
            seen = await asyncio.wait_for(orders, 5)
            assert [o['id'] for o in seen] == [limit['id']] and seen[0]['status'] == 'open'
            canceled = await ex.cancel_order(limit['id'], symbol)
            assert canceled['status'] == 'canceled'
            market = await ex.create_order(symbol, 'market', 'buy', qty)
            fills = await asyncio.wait_for(trades, 5)
            assert fills[-1]['order'] == market['id'] and fills[-1]['amount'] == qty
            assert settle in (await asyncio.wait_for(balance, 5))['total']
            assert (await ex.fetch_order(market['id'], symbol))['status'] == 'closed'
        finally:
            await ex.close()
    asyncio.run(asyncio.wait_for(session(), 60))
