"""Binance: the exchange's data and payload parsing for the live store.

Spot, USDⓈ-M futures (linear) and COIN-M futures (inverse). Spot user data
comes over the WS-API (``userDataStream.subscribe.signature``: the spot
listenKey REST endpoints were retired in 2026); futures user data still
uses a listenKey, refreshed every 30 minutes and renewed on reconnect.
USDⓈ-M streams are split into /market (klines) and /private (user data).
"""
import hashlib
import hmac
import itertools
import logging

from ..events import (SUBSCRIBED, Bar, BalanceUpdate, CANCELED, CLOSED, EXPIRED, Fill, OPEN,
                      OrderUpdate, REJECTED)
from ..exchanges.binance.profile import LISTEN_KEY_REFRESH, PROFILE
from ..markets import SPOT
from ..secrets import install_log_redaction
from ..store import Store
from ..brokers.binance import BinanceBroker
from ..feeds.binance import BinanceData
from . import _binance_futures as futures

log = logging.getLogger(__name__)

# executionReport X -> our status
_STATUS = {'NEW': OPEN, 'PARTIALLY_FILLED': OPEN, 'PENDING_NEW': OPEN,
           'FILLED': CLOSED, 'CANCELED': CANCELED, 'PENDING_CANCEL': OPEN,
           'REJECTED': REJECTED, 'EXPIRED': EXPIRED, 'EXPIRED_IN_MATCH': EXPIRED}

class BinanceStore(Store):
    """Binance spot, USDⓈ-M (``futures``/``linear``) and COIN-M (``delivery``/``inverse``)."""

    profile = PROFILE      # exchanges/binance/profile.py: everything that is data
    LISTEN_KEY_REFRESH = LISTEN_KEY_REFRESH

    BrokerCls = BinanceBroker
    DataCls = BinanceData

    _ids = itertools.count(1)

    def _stream_url(self, role, **fmt):
        table = self.product.ws
        path = table[role].format(**fmt)
        if self.p.endpoint:
            return self.ws_url(table['prefix'] + path, None)
        hosts = table['api_hosts' if role == 'user' and 'api_hosts' in table else 'hosts']
        return hosts[1 if self.p.testnet else 0] + path

    def client_id_query(self, client_id, conditional=False):
        # Futures stop/take-profit orders live in the algo service (clientAlgoId).
        query = {self.CLIENT_ID_PARAM: client_id}
        if conditional:
            query.update(self.product['conditional_lookup'])
        return query

    def fetch_order_by_client_id(self, client_id, symbol, conditional=False):
        found = super().fetch_order_by_client_id(client_id, symbol, conditional)
        actual = ((found or {}).get('info') or {}).get('actualOrderId')
        if conditional and actual and str(actual) not in ('0', ''):
            # Triggered: the fills belong to the regular order it became.
            order = self.call('fetch_order', str(actual), symbol)
            order['clientOrderId'] = client_id
            return order
        return found

    def wallet_balances(self, info):
        # Futures accounts: ccxt's total is the margin balance (wallet +
        # unrealised PnL); the wallet is its own field of each asset.
        assets = info.get('assets') if isinstance(info, dict) else None
        return {self.exchange.safe_currency_code(a['asset']): float(a['walletBalance'])
                for a in assets or () if a.get('walletBalance') is not None}

    def leverage_setting(self, symbol):
        method, param, field = self.product['leverage_source']
        market = self.market_rules(symbol).info
        rows = self.call(method, {param: market['info'][field]})
        for row in rows if isinstance(rows, list) else (rows,):
            if row.get('symbol') == market['id'] and row.get('leverage'):
                return float(row['leverage'])
        return None

    def open_order_queries(self):
        # Futures conditional orders live in the algo service, listed apart.
        lookup = self.product['conditional_lookup']
        return ({}, dict(lookup)) if lookup else ({},)

    def symbol_of(self, market_id):
        """Unified symbol for an exchange id seen in a stream payload."""
        return self.exchange.safe_symbol(market_id, None, None,
                                         'spot' if self.kind == SPOT else 'swap')

    # -- market stream ---------------------------------------------------------
    def market_ws_url(self):
        return self._stream_url('market')

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

    # -- user-data stream: the WS-API (spot) or a listenKey (futures) -----------------
    @property
    def _listen_key_login(self):
        return self.product['user_login'] == 'listenKey'

    def user_ws_url(self):
        if not self._listen_key_login:
            return self._stream_url('user')
        # A fresh listenKey on every (re)connect: an expired one is useless.
        self._listen_key = self.call(self.product['listen_key'][0])['listenKey']
        # Anyone holding it reads the account's stream: never in a log line
        # (COIN-M puts it in the URL path, where no key=value pattern shows it).
        install_log_redaction(self._listen_key)
        return self._stream_url('user', key=self._listen_key)

    def user_stream_ping(self):
        if not self._listen_key_login:
            return None
        return (self.LISTEN_KEY_REFRESH, self._keep_listen_key)

    def _keep_listen_key(self):
        try:
            self.call(self.product['listen_key'][1])
        except Exception as exc:   # the next reconnect gets a new key anyway
            log.warning('listenKey keep-alive failed: %s', exc)
        return None

    def user_stream_open(self, stream):
        """Subscribe the account; True: its events flow once the answer says so."""
        if self._listen_key_login:
            return False    # a listenKey stream carries the account from the connect
        params = {'apiKey': self._creds.apikey, 'timestamp': self.exchange.nonce()}
        query = '&'.join('%s=%s' % (k, params[k]) for k in sorted(params))
        params['signature'] = hmac.new(self._creds.secret.encode(), query.encode(),
                                       hashlib.sha256).hexdigest()
        stream.send({'id': 'sub-%d' % next(self._ids),
                     'method': 'userDataStream.subscribe.signature', 'params': params})
        return True

    def parse_user_message(self, msg):
        if self._listen_key_login:
            return self._parse_futures(msg)
        event = msg.get('event')
        if event is None:
            status = msg.get('status')
            if status is not None and status != 200:
                err = msg.get('error') or {}
                return (self.user_login_refused('user-data subscription refused: %s %s'
                                                % (err.get('code'), err.get('msg'))),)
            if status == 200 and str(msg.get('id', '')).startswith('sub-'):
                return (SUBSCRIBED,)    # the account's events flow from here
            return ()
        kind = event.get('e')
        if kind == 'executionReport':
            return (self._order_update(event),)
        if kind == 'outboundAccountPosition':
            return (BalanceUpdate({b['a']: (float(b['f']), float(b['l']))
                                   for b in event.get('B', ())}, event.get('E')),)
        if kind == 'eventStreamTerminated':
            # The subscription is gone but the socket is not: reconnect, which
            # subscribes again and has the broker reconcile what it missed.
            self.hub.reconnect_user()
            return (('error', 'the exchange ended the user-data stream; resubscribing'),)
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
            symbol=self.symbol_of(e['s']), status=_STATUS.get(e['X'], OPEN),
            filled=cum_qty, remaining=orig_qty - cum_qty,
            average=(cum_quote / cum_qty) if cum_qty else None, reason=reason,
            timestamp=e.get('E'), fills=fills, source='stream')

    def _parse_futures(self, msg):
        kind = msg.get('e')
        if kind == 'listenKeyExpired':
            self.hub.reconnect_user()     # reconnecting fetches a new key
            return (('error', 'listenKey expired; reconnecting with a new one'),)
        parse = futures.PARSERS.get(kind)
        return parse(self, msg) if parse is not None else ()
