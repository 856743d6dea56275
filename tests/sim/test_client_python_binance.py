"""python-binance, unmodified, against the simulator: only its URLs (host:port) change.

A realistic session per venue: market data (klines, ticker, depth), a limit order
placed and canceled, a market order that fills, the account, and user-stream events
(spot over the WS-API, futures over listenKey sockets), through its sync ``Client``,
its ``AsyncClient`` + ``BinanceSocketManager`` and its ``ThreadedWebsocketManager``.
"""
import asyncio
import queue
import threading
import time

import pytest
from binance import AsyncClient, BinanceSocketManager, ThreadedWebsocketManager
from binance.base_client import BaseClient
from binance.client import Client
from binance.exceptions import BinanceAPIException
from binance.ws.reconnecting_websocket import ReconnectingWebsocket

from simutil import KEY, SECRET

#: client class attribute -> simulator path (python-binance formats these with the tld;
#: strings without placeholders pass through unchanged)
REST_URLS = {'API_URL': '/api', 'FUTURES_URL': '/fapi', 'FUTURES_COIN_URL': '/dapi',
             'MARGIN_API_URL': '/sapi'}
STREAM_URLS = {'STREAM_URL': '/', 'FSTREAM_URL': '/', 'DSTREAM_URL': '/dapi/'}


@pytest.fixture
def pb(sim, monkeypatch):
    """The simulator with python-binance pointed at it (class URLs, restored after)."""
    for name, path in REST_URLS.items():
        monkeypatch.setattr(BaseClient, name, sim.base_url + path)
    monkeypatch.setattr(BaseClient, 'WS_API_URL', sim.ws_url + '/ws-api/v3')
    for name, path in STREAM_URLS.items():
        monkeypatch.setattr(BinanceSocketManager, name, sim.ws_url + path)
    # the client's read loop polls with this timeout (10 s) and a socket's close waits
    # for one poll, against any server: a shorter poll keeps closes and the
    # ThreadedWebsocketManager's stop quick
    monkeypatch.setattr(ReconnectingWebsocket, 'TIMEOUT', 2)
    client = Client(KEY, SECRET)
    yield sim, client
    client.close_connection()


def test_spot_session_rest(pb):
    sim, c = pb
    klines = c.get_klines(symbol='BTCUSDT', interval='1m', limit=3)
    assert len(klines) == 3 and klines[-1][0] == sim.now_ms() // 60000 * 60000
    ticker = c.get_ticker(symbol='BTCUSDT')
    book = c.get_order_book(symbol='BTCUSDT', limit=5)
    assert float(book['bids'][0][0]) <= float(ticker['lastPrice']) < float(book['asks'][0][0])
    assert c.get_avg_price(symbol='BTCUSDT')['mins'] == 5
    assert len(c.get_recent_trades(symbol='BTCUSDT', limit=3)) == 3
    assert len(c.get_aggregate_trades(symbol='BTCUSDT', limit=3)) == 3
    assert c.create_test_order(symbol='BTCUSDT', side='BUY', type='MARKET',
                               quantity='0.01') == {}
    price = '%.2f' % (float(ticker['lastPrice']) * 0.9)
    order = c.order_limit_buy(symbol='BTCUSDT', quantity='0.01', price=price)
    assert order['status'] == 'NEW'
    assert [o['orderId'] for o in c.get_open_orders(symbol='BTCUSDT')] == [order['orderId']]
    assert c.cancel_order(symbol='BTCUSDT', orderId=order['orderId'])['status'] == 'CANCELED'
    filled = c.order_market_buy(symbol='BTCUSDT', quantity='0.01')
    assert filled['status'] == 'FILLED' and filled['fills']
    balances = {b['asset']: b for b in c.get_account()['balances']}
    assert float(balances['BTC']['free']) == pytest.approx(0.00999)
    assert c.get_my_trades(symbol='BTCUSDT')[0]['orderId'] == filled['orderId']
    with pytest.raises(BinanceAPIException) as err:
        c.order_limit_buy(symbol='BTCUSDT', quantity='0.000001', price=price)
    assert err.value.code == -1013


@pytest.mark.parametrize('venue', ['usdm', 'coinm'])
def test_futures_session_rest(pb, venue):
    sim, c = pb
    coin = venue == 'coinm'
    symbol, qty = ('BTCUSD_PERP', '1') if coin else ('BTCUSDT', '0.01')
    call = (lambda name, **kw: getattr(c, 'futures_coin_' + name)(**kw)) if coin else \
        (lambda name, **kw: getattr(c, 'futures_' + name)(**kw))
    assert len(call('klines', symbol=symbol, interval='5m', limit=2)) == 2
    ticker = call('ticker', symbol=symbol)
    ticker = ticker[0] if coin else ticker  # COIN-M answers an array
    book = call('order_book', symbol=symbol, limit=5)
    assert float(book['bids'][0][0]) <= float(ticker['lastPrice'])
    mark = call('mark_price', symbol=symbol)
    assert (mark[0] if coin else mark)['symbol'] == symbol
    assert call('funding_rate', symbol=symbol, limit=2)
    price = '%.1f' % (float(ticker['lastPrice']) * 0.9)
    order = call('create_order', symbol=symbol, side='BUY', type='LIMIT', timeInForce='GTC',
                 quantity=qty, price=price)
    assert order['status'] == 'NEW'
    canceled = call('cancel_order', symbol=symbol, orderId=order['orderId'])
    assert canceled['status'] == 'CANCELED'
    filled = call('create_order', symbol=symbol, side='BUY', type='MARKET', quantity=qty)
    assert call('get_order', symbol=symbol, orderId=filled['orderId'])['status'] == 'FILLED'
    account = call('account')
    if not coin:
        assert float(account['availableBalance']) < 10000
    positions = call('position_information', symbol=symbol)
    assert float(positions[0]['positionAmt']) == float(qty)
    assert account['positions'][0]['isolated'] is False


def test_streams_through_the_socket_manager(pb):
    """Kline and book streams, spot user data over the WS-API, futures user data."""
    sim, _ = pb

    async def session():
        client = await AsyncClient.create(KEY, SECRET)
        bm = BinanceSocketManager(client)
        try:
            async with bm.kline_socket('BTCUSDT', '1m') as kl, \
                    bm.depth_socket('BTCUSDT', depth=BinanceSocketManager.WEBSOCKET_DEPTH_5) \
                    as depth:
                await asyncio.to_thread(sim.wait_subscribed, 'btcusdt@kline_1m')
                await asyncio.to_thread(sim.advance, 60)
                event = await asyncio.wait_for(kl.recv(), 5)
                assert event['e'] == 'kline' and event['k']['i'] == '1m'
                assert len((await asyncio.wait_for(depth.recv(), 5))['bids']) == 5
            async with bm.user_socket() as user:  # spot user data: the WS-API
                await client.create_order(symbol='BTCUSDT', side='BUY', type='MARKET',
                                          quantity='0.01')
                reports = [await asyncio.wait_for(user.recv(), 5) for _ in range(3)]
                assert 'FILLED' in [r.get('X') for r in reports]
            async with bm.futures_user_socket() as fut:
                await client.futures_create_order(symbol='BTCUSDT', side='BUY', type='MARKET',
                                                  quantity='0.01')
                event = await asyncio.wait_for(fut.recv(), 5)
                assert event['e'] == 'ORDER_TRADE_UPDATE'
            async with bm.coin_futures_user_socket() as coin:
                await client.futures_coin_create_order(symbol='BTCUSD_PERP', side='SELL',
                                                       type='MARKET', quantity='1')
                event = await asyncio.wait_for(coin.recv(), 5)
                assert event['e'] == 'ORDER_TRADE_UPDATE' and event['o']['s'] == 'BTCUSD_PERP'
        finally:
            await client.close_connection()
    asyncio.run(session())


def test_threaded_websocket_manager(pb):
    """ThreadedWebsocketManager (its own thread and loop): a kline stream and the
    spot user stream reach the callbacks; stop() ends its thread."""
    sim, c = pb
    got = queue.Queue()
    twm = ThreadedWebsocketManager(api_key=KEY, api_secret=SECRET)
    twm.start()
    names = []
    try:
        names = [twm.start_kline_socket(callback=got.put, symbol='BTCUSDT', interval='15m'),
                 twm.start_user_socket(callback=got.put)]
        sim.wait_subscribed('btcusdt@kline_15m')
        sim.wait_user_subscribed()
        sim.advance(900)
        c.order_market_buy(symbol='BTCUSDT', quantity='0.01')
        kinds = set()
        while not {'kline', 'executionReport'} <= kinds:
            kinds.add(got.get(timeout=5).get('e'))
    finally:
        # sockets first, then the client: stop() alone closes the WS-API before the
        # user socket has unsubscribed over it. stop_socket() only sets a flag its
        # listener reads within 3 s: wait until each listener has ended (it drops
        # its name from _socket_running), or an unsubscribe refused by a WS-API
        # already closing leaves its name there and the manager's thread
        # waiting for it forever (python-binance 1.0's start_listener)
        for name in names:
            twm.stop_socket(name)
        deadline = time.monotonic() + 15
        while any(n in twm._socket_running for n in names) and time.monotonic() < deadline:
            time.sleep(0.05)
        twm.stop()
        twm.join(timeout=30)
    assert not twm.is_alive()
    assert not [t for t in threading.enumerate() if t is twm]
