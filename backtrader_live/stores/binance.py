"""Binance: the exchange's data and payload parsing for the live store.

Spot user data comes over the WS-API (``userDataStream.subscribe.signature``):
Binance retired the spot listenKey REST endpoints in 2026.
"""
import hashlib
import hmac
import itertools

from ..events import Bar, BalanceUpdate, CANCELED, CLOSED, EXPIRED, Fill, OPEN, OrderUpdate, REJECTED
from ..store import Store
from ..brokers.binance import BinanceBroker
from ..feeds.binance import BinanceData

# executionReport X -> our status
_STATUS = {'NEW': OPEN, 'PARTIALLY_FILLED': OPEN, 'PENDING_NEW': OPEN,
           'FILLED': CLOSED, 'CANCELED': CANCELED, 'PENDING_CANCEL': OPEN,
           'REJECTED': REJECTED, 'EXPIRED': EXPIRED, 'EXPIRED_IN_MATCH': EXPIRED}

_WS_MARKET = {'mainnet': 'wss://stream.binance.com:9443/stream',
              'testnet': 'wss://stream.testnet.binance.vision/stream'}
_WS_API = {'mainnet': 'wss://ws-api.binance.com:443/ws-api/v3',
           'testnet': 'wss://ws-api.testnet.binance.vision/ws-api/v3'}

_LOAD_MARKETS_OPTIONS = {
    # Skip the hidden sapi calls load_markets makes with keys set: they cost
    # rate-limit weight and do not exist on the testnet.
    'fetchCurrencies': False, 'fetchMargins': False,
    # get_open_orders() without a symbol is a deliberate, rare reconcile call.
    'fetchOpenOrders': {'warnWithoutSymbol': False},
}


class BinanceStore(Store):
    """Binance spot (USDⓈ-M and COIN-M futures come in their own issue)."""

    exchange_name = 'binance'
    env_prefix = 'BINANCE'
    ccxt_id = 'binance'
    MARKET_TYPES = {
        'spot': dict(_LOAD_MARKETS_OPTIONS, defaultType='spot',
                     fetchMarkets={'types': ['spot']}),
    }
    TIMEFRAMES = ('1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h',
                  '12h', '1d', '3d', '1w', '1M')
    OHLCV_PAGE_LIMIT = 1000
    CLIENT_ID_PARAM = 'clientOrderId'   # ccxt sends newClientOrderId / origClientOrderId

    BrokerCls = BinanceBroker
    DataCls = BinanceData

    _ids = itertools.count(1)

    # -- market stream ---------------------------------------------------------
    def market_ws_url(self):
        return self.ws_url('/stream', _WS_MARKET)

    def bar_topic(self, symbol, timeframe):
        market_id = self.market_rules(symbol).info['id']
        return '%s@kline_%s' % (market_id.lower(), timeframe)

    def subscribe_message(self, topics):
        return {'method': 'SUBSCRIBE', 'params': list(topics), 'id': next(self._ids)}

    def parse_market_message(self, msg):
        data = msg.get('data')
        if not data or data.get('e') != 'kline':
            return ()     # subscription acks and other streams
        k = data['k']
        bar = Bar(int(k['t']), float(k['o']), float(k['h']), float(k['l']),
                  float(k['c']), float(k['v']), bool(k['x']))
        return ((msg['stream'], bar),)

    # -- user-data stream (WS-API) -------------------------------------------------
    def user_ws_url(self):
        return self.ws_url('/ws-api/v3', _WS_API)

    def user_stream_open(self, stream):
        params = {'apiKey': self._creds.apikey, 'timestamp': self.exchange.nonce()}
        query = '&'.join('%s=%s' % (k, params[k]) for k in sorted(params))
        params['signature'] = hmac.new(self._creds.secret.encode(), query.encode(),
                                       hashlib.sha256).hexdigest()
        stream.send({'id': 'sub-%d' % next(self._ids),
                     'method': 'userDataStream.subscribe.signature', 'params': params})

    def parse_user_message(self, msg):
        event = msg.get('event')
        if event is None:
            status = msg.get('status')
            if status is not None and status != 200:
                err = msg.get('error') or {}
                return (('error', 'user-data subscription refused: %s %s'
                         % (err.get('code'), err.get('msg'))),)
            return ()
        kind = event.get('e')
        if kind == 'executionReport':
            return (self._order_update(event),)
        if kind == 'outboundAccountPosition':
            return (BalanceUpdate({b['a']: (float(b['f']), float(b['l']))
                                   for b in event.get('B', ())}, event.get('E')),)
        if kind == 'eventStreamTerminated':
            return (('error', 'the exchange ended the user-data stream'),)
        return ()

    def _order_update(self, e):
        cancelled = e.get('x') == 'CANCELED' and e.get('C')
        orig_qty, cum_qty = float(e['q']), float(e['z'])
        cum_quote = float(e.get('Z') or 0.0)
        fills = []
        if e.get('x') == 'TRADE' and int(e.get('t', -1)) >= 0:
            fills.append(Fill(trade_id=str(e['t']), price=float(e['L']), amount=float(e['l']),
                              fee=float(e.get('n') or 0.0), fee_asset=e.get('N'),
                              timestamp=e.get('T'), maker=bool(e.get('m'))))
        reason = e.get('r') if e.get('r') not in (None, 'NONE') else None
        return OrderUpdate(
            client_id=e['C'] if cancelled else e['c'], exchange_id=str(e['i']),
            symbol=self.exchange.safe_symbol(e['s']), status=_STATUS.get(e['X'], OPEN),
            filled=cum_qty, remaining=orig_qty - cum_qty,
            average=(cum_quote / cum_qty) if cum_qty else None, reason=reason,
            timestamp=e.get('E'), fills=fills, source='stream')
