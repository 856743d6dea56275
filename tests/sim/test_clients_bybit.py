"""Client libraries nobody here wrote, unmodified, against the Bybit simulator with
only the host:port changed: pybit (HTTP and WebSocket), ccxt's bybit and
ccxt.pro's bybit.  Each completes a realistic session on spot, linear and
inverse: klines, ticker and order book, a limit order placed and cancelled,
a market order that fills, the wallet, and a private-stream event for it.

Pointing them: pybit's ``HTTP`` keeps its base URL in the instance attribute
``endpoint`` and its WebSocket reads the module constants ``PUBLIC_WSS`` /
``PRIVATE_WSS`` of ``pybit.unified_trading`` (set with monkeypatch, as a user
would, no pybit code patched); ccxt's hosts live in ``urls['api']``.
"""
import asyncio
import re

import ccxt
import ccxt.pro as ccxtpro
import pytest
from pybit import unified_trading as pybit_ut   # the `test` extra installs it

from simutil import KEY, SECRET, eventually

from venues import BYBIT, SYMBOL_ID
from venues import VENUES as _VENUES

# The one venue table (tests/venues.py): Bybit's category (its market type),
# symbol, symbol id, and the test's order size.
_QTY = {'bybit-spot': '0.1', 'bybit-linear': '0.1', 'bybit-inverse': '100'}
VENUES = [(_VENUES[v][1], _VENUES[v][2], SYMBOL_ID[v], _QTY[v]) for v in BYBIT]


def rehost(urls, http, ws):
    """Every https:// / wss:// host in ccxt's nested ``urls['api']`` -> the simulator."""
    for k, v in urls.items():
        if isinstance(v, dict):
            rehost(v, http, ws)
        elif isinstance(v, str):
            urls[k] = re.sub(r'^wss://[^/]+', ws, re.sub(r'^https://[^/]+', http, v))


# -- pybit ---------------------------------------------------------------------------------
@pytest.fixture
def pybit(bybit, monkeypatch):
    s, _ = bybit
    http = pybit_ut.HTTP(api_key=KEY, api_secret=SECRET)
    http.endpoint = s.base_url
    monkeypatch.setattr(pybit_ut, 'PUBLIC_WSS', s.ws_url + '/v5/public/{CHANNEL_TYPE}')
    monkeypatch.setattr(pybit_ut, 'PRIVATE_WSS', s.ws_url + '/v5/private')
    sockets = []

    def socket(channel, **kw):
        # pybit's reader thread checks for exit() once per ping_timeout (10 s by default):
        # its documented knobs keep the test's teardown short
        ws = pybit_ut.WebSocket(testnet=False, channel_type=channel, ping_interval=3,
                                ping_timeout=1, **kw)
        sockets.append(ws)
        return ws
    yield s, http, socket
    for ws in sockets:
        ws.exit()
    eventually(lambda: not any(ws.wst.is_alive() for ws in sockets), timeout=10)


@pytest.mark.parametrize('cat,symbol,sid,qty', VENUES)
def test_pybit_session(pybit, cat, symbol, sid, qty):
    s, http, socket = pybit
    got = []
    pub = socket(cat)
    pub.kline_stream(60, sid, lambda m: got.append(('kline', m['data'][0]['close'])))
    pub.ticker_stream(sid, lambda m: got.append(('ticker', m['data']['lastPrice'])))
    pub.orderbook_stream(50, sid, lambda m: got.append(('book', m['data']['b'][0][0])))
    pub.trade_stream(sid, lambda m: got.append(('trade', m['data'][-1]['p'])))
    priv = socket('private', api_key=KEY, api_secret=SECRET)
    priv.order_stream(lambda m: got.append(('order', m['data'][0]['orderStatus'])))
    priv.wallet_stream(lambda m: got.append(('wallet', m['data'][0]['totalEquity'])))
    for topic in ('kline.60.', 'tickers.', 'orderbook.50.', 'publicTrade.'):
        s.wait_subscribed(topic + sid)
    s.wait_user_subscribed()

    kl = http.get_kline(category=cat, symbol=sid, interval=60, limit=3)['result']['list']
    assert int(kl[0][0]) == s.now_ms() and len(kl) == 3
    [t] = http.get_tickers(category=cat, symbol=sid)['result']['list']
    book = http.get_orderbook(category=cat, symbol=sid, limit=5)['result']
    assert t['lastPrice'] == t['bid1Price'] == book['b'][0][0] == '100.00000000'
    o = http.place_order(category=cat, symbol=sid, side='Buy', orderType='Limit', qty=qty,
                         price='95', orderLinkId='pb-1')['result']
    [live] = http.get_open_orders(category=cat, symbol=sid)['result']['list']
    assert live['orderLinkId'] == 'pb-1' and live['orderStatus'] == 'New'
    http.cancel_order(category=cat, symbol=sid, orderId=o['orderId'])
    assert http.get_open_orders(category=cat, symbol=sid)['result']['list'] == []
    m = http.place_order(category=cat, symbol=sid, side='Buy', orderType='Market', qty=qty,
                         marketUnit='baseCoin')['result']
    [done] = http.get_order_history(category=cat, symbol=sid,
                                    orderId=m['orderId'])['result']['list']
    assert done['orderStatus'] == 'Filled' and float(done['cumExecFee']) > 0
    w = http.get_wallet_balance(accountType='UNIFIED')['result']['list'][0]
    assert float(w['totalEquity']) > 0
    eventually(lambda: ('order', 'Filled') in got and ('order', 'Cancelled') in got)
    eventually(lambda: any(k == 'wallet' for k, _ in got))
    s.advance(1200)                                   # public streams follow the clock
    eventually(lambda: {('ticker', '110.00000000'), ('book', '110.00000000'),
                        ('kline', '110.00000000')} <= set(got))
    eventually(lambda: ('trade', '107.50000000') in got)


# -- ccxt (REST) -------------------------------------------------------------------------------
@pytest.mark.parametrize('cat,symbol,sid,qty', VENUES)
def test_ccxt_session(bybit, cat, symbol, sid, qty):
    s, _ = bybit
    ex = ccxt.bybit({'apiKey': KEY, 'secret': SECRET, 'enableRateLimit': False})
    rehost(ex.urls['api'], s.base_url, s.ws_url)      # default options: every probe runs
    ex.load_markets()
    amount = float(qty)
    assert ex.fetch_ohlcv(symbol, '1h', limit=3)[-1][0] == s.now_ms()
    assert ex.fetch_ticker(symbol)['last'] == 100 and symbol in ex.fetch_tickers([symbol])
    assert ex.fetch_order_book(symbol, 5)['bids'][0][0] == 100
    assert ex.fetch_trades(symbol, limit=2)
    o = ex.create_order(symbol, 'limit', 'buy', amount, 95)
    o = ex.edit_order(o['id'], symbol, 'limit', 'buy', amount, 94)
    assert [x['price'] for x in ex.fetch_open_orders(symbol)] == [94]
    ex.cancel_order(o['id'], symbol)
    assert ex.fetch_open_orders(symbol) == []
    m = ex.create_order(symbol, 'market', 'buy', amount,
                        params={'marketUnit': 'baseCoin'} if cat == 'spot' else {})
    done = ex.fetch_order(m['id'], symbol, params={'acknowledged': True})
    assert done['status'] == 'closed' and done['filled'] == amount and done['fee']['cost'] > 0
    bal = ex.fetch_balance()
    # spot: bought BTC less the fee; contracts: only the fee leaves the wallet
    coin, start = {'spot': ('BTC', 1 + amount), 'linear': ('USDT', 20000),
                   'inverse': ('BTC', 1)}[cat]
    assert bal[coin]['total'] == pytest.approx(start - done['fee']['cost'])
    if cat != 'spot':
        [p] = ex.fetch_positions([symbol])
        assert p['contracts'] == amount and p['side'] == 'long'


# -- ccxt.pro ------------------------------------------------------------------------------------
async def until(cond, timeout=5.0, seen=lambda: None):
    """Poll ``cond`` on the event loop (ccxt.pro's caches fill as messages arrive)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError('condition not met within %ss; saw %r' % (timeout, seen()))
        await asyncio.sleep(0.01)


async def _pro_session(s, cat, symbol, qty):
    ex = ccxtpro.bybit({'apiKey': KEY, 'secret': SECRET, 'enableRateLimit': False})
    rehost(ex.urls['api'], s.base_url, s.ws_url)
    loop = asyncio.get_running_loop()

    def off_loop(fn, *args):          # the simulator's blocking helpers, off this loop
        return loop.run_in_executor(None, fn, *args)
    try:
        await ex.load_markets()
        sid = ex.market(symbol)['id']
        futures = {'ohlcv': ex.watch_ohlcv(symbol, '1h'), 'ticker': ex.watch_ticker(symbol),
                   'book': ex.watch_order_book(symbol), 'orders': ex.watch_orders(symbol),
                   'mine': ex.watch_my_trades(symbol), 'balance': ex.watch_balance()}
        if cat != 'spot':
            # the first call answers the REST snapshot; the next one subscribes
            assert await ex.watch_positions([symbol]) == []
            futures['positions'] = ex.watch_positions([symbol])
        tasks = {k: asyncio.ensure_future(f) for k, f in futures.items()}
        assert (await tasks['ticker'])['last'] == 100          # the snapshot on subscribe
        assert (await tasks['book'])['bids'][0][0] == 100
        for topic in ('kline.60.', 'tickers.', 'orderbook.50.'):
            await off_loop(s.wait_subscribed, topic + sid)
        for topic in ('order', 'execution', 'wallet') + (('position',) if cat != 'spot'
                                                         else ()):
            await off_loop(s.wait_subscribed, topic)
        trades = asyncio.ensure_future(ex.watch_trades(symbol))
        await off_loop(s.wait_subscribed, 'publicTrade.' + sid)
        book = asyncio.ensure_future(ex.watch_order_book(symbol))
        await off_loop(s.advance, 1200)
        assert (await tasks['ohlcv'])[-1][2] == 110                 # the bar's high so far
        assert (await trades)[-1]['price'] == 107.5
        assert (await book)['bids'][0][0] == 110
        o = await ex.create_order(symbol, 'limit', 'buy', qty, 95)
        await ex.cancel_order(o['id'], symbol)
        m = await ex.create_order(symbol, 'market', 'buy', qty,
                                  params={'marketUnit': 'baseCoin'} if cat == 'spot' else {})
        assert (await tasks['orders'])[0]['symbol'] == symbol   # spot stays spot
        await until(lambda: {(x['id'], x['status']) for x in ex.orders} >=
                    {(o['id'], 'canceled'), (m['id'], 'closed')},
                    seen=lambda: [(x['id'], x['status']) for x in ex.orders])
        mine = await tasks['mine']
        assert mine[-1]['symbol'] == symbol and mine[-1]['amount'] == qty
        assert mine[-1]['order'] == m['id'] and mine[-1]['fee']['cost'] > 0
        assert (await tasks['balance'])['USDT']['total'] > 0
        if cat != 'spot':
            [p] = await tasks['positions']
            assert p['symbol'] == symbol and p['contracts'] == qty and p['side'] == 'long'
    finally:
        await ex.close()


@pytest.mark.parametrize('cat,symbol,sid,qty', VENUES)
def test_ccxt_pro_session(bybit, cat, symbol, sid, qty):
    s, _ = bybit
    asyncio.run(asyncio.wait_for(_pro_session(s, cat, symbol, float(qty)), 30))
