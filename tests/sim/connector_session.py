"""A realistic binance-futures-connector session against a fresh simulator.

binance-futures-connector and python-binance both install the package ``binance``,
so this runs in its own interpreter with the connector first on ``sys.path``
(tests/sim/test_client_connectors.py installs it into a temporary folder; by hand:
``pip install --target DIR binance-futures-connector`` then
``PYTHONPATH=DIR:. python tests/sim/connector_session.py``).  Only host:port change:
USD-M streams use the split ``/market`` path, COIN-M the simulator's ``/dapi``.
Prints ``OK <venue>`` per completed venue; any deviation raises.
"""
import json
import os
import queue
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(1, os.path.dirname(os.path.dirname(HERE)))  # the repository (after DIR)

from binance.cm_futures import CMFutures  # noqa: E402
from binance.um_futures import UMFutures  # noqa: E402
from binance.websocket.cm_futures.websocket_client import CMFuturesWebsocketClient  # noqa: E402
from binance.websocket.um_futures.websocket_client import UMFuturesWebsocketClient  # noqa: E402

from backtrader_live.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET, BinanceSimulator  # noqa: E402

VENUES = {
    'usdm': dict(rest=UMFutures, ws=UMFuturesWebsocketClient, ws_path='/market',
                 symbol='BTCUSDT', pair='btcusdt', qty='0.01', market='futures'),
    'coinm': dict(rest=CMFutures, ws=CMFuturesWebsocketClient, ws_path='/dapi',
                  symbol='BTCUSD_PERP', pair='btcusd', qty='1', market='coinm'),
}


def wait_for(events, pred, what, timeout=5):
    """The first message satisfying ``pred`` (bounded wait)."""
    seen = []
    while True:
        try:
            msg = events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError('no %s; saw %s' % (what, seen[-5:])) from None
        seen.append(msg)
        if pred(msg):
            return msg


def session(sim, venue):
    v = VENUES[venue]
    symbol = v['symbol']
    rest = v['rest'](key=DEFAULT_API_KEY, secret=DEFAULT_API_SECRET, base_url=sim.base_url)
    klines = rest.klines(symbol, '1m', limit=3)
    assert len(klines) == 3 and klines[-1][0] == sim.now_ms() // 60000 * 60000, klines
    ticker = rest.ticker_24hr_price_change(symbol)
    ticker = ticker[0] if isinstance(ticker, list) else ticker  # COIN-M: an array
    book = rest.depth(symbol, limit=5)
    assert float(book['bids'][0][0]) <= float(ticker['lastPrice']) < float(book['asks'][0][0])
    assert rest.mark_price(symbol) and rest.funding_rate(symbol, limit=2)

    events = queue.Queue()
    ws = v['ws'](stream_url=sim.ws_url + v['ws_path'],
                 on_message=lambda _, text: events.put(json.loads(text)))
    try:
        listen_key = rest.new_listen_key()['listenKey']
        ws.kline(symbol=symbol.lower(), interval='1m')
        ws.continuous_kline(pair=v['pair'], contractType='perpetual', interval='1m')
        ws.user_data(listen_key=listen_key)
        sim.wait_user_subscribed(market=v['market'])
        sim.wait_subscribed('%s@kline_1m' % symbol.lower())
        sim.advance(60)
        wait_for(events, lambda m: m.get('e') == 'kline' and m['k']['x'], 'closed kline')
        wait_for(events, lambda m: m.get('e') == 'continuous_kline', 'continuous kline')

        price = '%.1f' % (float(ticker['lastPrice']) * 0.9)
        order = rest.new_order(symbol=symbol, side='BUY', type='LIMIT', timeInForce='GTC',
                               quantity=v['qty'], price=price)
        assert order['status'] == 'NEW', order
        wait_for(events, lambda m: m.get('e') == 'ORDER_TRADE_UPDATE' and
                 m['o']['i'] == order['orderId'], 'order event')
        canceled = rest.cancel_order(symbol=symbol, orderId=order['orderId'])
        assert canceled['status'] == 'CANCELED', canceled
        filled = rest.new_order(symbol=symbol, side='BUY', type='MARKET', quantity=v['qty'])
        wait_for(events, lambda m: m.get('e') == 'ORDER_TRADE_UPDATE' and
                 m['o']['i'] == filled['orderId'] and m['o']['X'] == 'FILLED', 'fill event')
        wait_for(events, lambda m: m.get('e') == 'ACCOUNT_UPDATE', 'account event')
        account = rest.account()
        assert account['positions'] and account['positions'][0]['isolated'] is False
        if venue == 'usdm':
            assert float(account['availableBalance']) < 10000, account
        positions = rest.get_position_risk(symbol=symbol) if venue == 'usdm' else \
            rest.get_position_risk(pair=v['pair'].upper())
        assert float(positions[0]['positionAmt']) == float(v['qty']), positions
    finally:
        ws.stop()
    print('OK', venue, flush=True)


def main():
    with BinanceSimulator() as sim:
        for venue in VENUES:
            session(sim, venue)


if __name__ == '__main__':
    main()
