"""Bybit v5: the exchange's data and payload parsing for the live store.

Spot, linear (USDT perpetuals) and inverse (coin-margined) on a unified
account. Public klines come from ``/v5/public/<category>`` (only candles
with ``confirm: true`` are closed), private events from ``/v5/private``
after an ``auth`` op; Bybit wants an application ping every 20 s.
"""
import hashlib
import hmac
import itertools

from ..brokers.bybit import BybitBroker
from ..exchanges.bybit.profile import INTERVALS, PROFILE
from ..events import (SUBSCRIBED, Bar, BalanceUpdate, CANCELED, CLOSED, EXPIRED, Fill,
                      FundingPayment, OPEN, OrderUpdate, PositionUpdate, REJECTED, expired)
from ..feeds.bybit import BybitData
from ..markets import kind_of
from ..store import Store

_STATUS = {'New': OPEN, 'PartiallyFilled': OPEN, 'Untriggered': OPEN, 'Triggered': OPEN,
           'Active': OPEN, 'Created': OPEN, 'Filled': CLOSED, 'Cancelled': CANCELED,
           'PartiallyFilledCanceled': CANCELED, 'Deactivated': CANCELED,
           'Rejected': REJECTED, 'Expired': EXPIRED}

# Bybit has no "expired" status: an order ended by its time in force is
# Cancelled with one of these rejectReason values (v5 enums): no maker for an
# IOC, an FOK not fully fillable, a PostOnly that would take.
EXPIRED_WHEN = {'rejectReason': frozenset(('EC_NoImmediateQtyToFill', 'EC_CancelForNoFullFill',
                                           'EC_PostOnlyWillTakeLiquidity'))}


class BybitStore(Store):
    """Bybit v5 unified account: spot, linear and inverse."""

    profile = PROFILE      # exchanges/bybit/profile.py: everything that is data

    EXPIRED_WHEN = EXPIRED_WHEN       # see events.order_from_ccxt
    BrokerCls = BybitBroker
    DataCls = BybitData

    _ids = itertools.count(1)

    @property
    def category(self):
        return self.product['category']

    def client_id_query(self, client_id, conditional=False):
        # ccxt insists on acknowledging that order/realtime only sees recent orders.
        query = {'orderLinkId': client_id, 'acknowledged': True}
        if conditional:
            query.update(self.product['conditional_lookup'])
        return query

    def fetch_order_by_client_id(self, client_id, symbol, conditional=False):
        found = self.call('fetch_open_orders', symbol, None, None, {'orderLinkId': client_id})
        if not found:
            found = self.call('fetch_closed_orders', symbol, None, None,
                              {'orderLinkId': client_id})
        found = [o for o in found if o.get('clientOrderId') == client_id]
        return found[0] if found else None

    def position_updates(self, symbols=None, params=None):
        if symbols or params:
            return super().position_updates(symbols, params)
        # Bybit wants a symbol or a settle coin: ask once per settle coin.
        coins = sorted({m['settle'] for m in self.get_markets().values()
                        if kind_of(m) == self.kind and m.get('settle')})
        found = []
        for coin in coins:
            found += super().position_updates(None, {'settleCoin': coin})
        return found

    def trigger_params(self, price, rising=None):
        params = {'triggerPrice': price}
        if rising is not None and self.product['trigger_direction']:
            params['triggerDirection'] = 1 if rising else 2
        return params

    # -- market stream ---------------------------------------------------------
    def market_ws_url(self):
        path = '/v5/public/' + self.category
        return self.ws_url(path, {k: v + path for k, v in self.product.ws.items()})

    def bar_topic(self, symbol, timeframe):
        market_id = self.market_rules(symbol).info['id']
        return 'kline.%s.%s' % (INTERVALS[timeframe], market_id)

    def subscribe_message(self, topics):
        return {'op': 'subscribe', 'req_id': str(next(self._ids)), 'args': list(topics)}

    def parse_market_message(self, msg):
        topic = msg.get('topic', '')
        if not topic.startswith('kline.'):
            return ()   # subscribe acks, pongs
        volume = self.product['kline_volume']     # in the base coin, as REST's (profile.py)
        return tuple((topic, Bar(int(k['start']), float(k['open']), float(k['high']),
                                 float(k['low']), float(k['close']), float(k[volume]),
                                 bool(k['confirm'])))
                     for k in msg.get('data', ()))

    # -- private stream --------------------------------------------------------------
    def user_ws_url(self):
        return self.ws_url('/v5/private',
                           {k: v + '/v5/private' for k, v in self.product.ws.items()})

    def user_stream_open(self, stream):
        # On the exchange's clock (synced after a 10002), or auth is refused.
        expires = self.server_ms() + 10_000
        signature = hmac.new(self._creds.secret.encode(), ('GET/realtime%d' % expires).encode(),
                             hashlib.sha256).hexdigest()
        stream.send({'op': 'auth', 'req_id': 'auth', 'args': [self._creds.apikey, expires,
                                                               signature]})
        stream.send({'op': 'subscribe', 'req_id': 'private',
                     'args': ['order', 'execution', 'position', 'wallet']})
        return True     # the topics flow once the subscribe answer says so

    def parse_user_message(self, msg):
        op = msg.get('op')
        if op in ('auth', 'subscribe') and not msg.get('success', True):
            return (self.user_login_refused('private stream %s refused: %s'
                                            % (op, msg.get('ret_msg'))),)
        if op == 'subscribe' and msg.get('req_id') == 'private':
            return (SUBSCRIBED,)
        parse = _PRIVATE.get(msg.get('topic', '').split('.')[0])
        if parse is None:
            return ()
        return tuple(event for item in msg.get('data', ()) for event in parse(self, item))

    # -- private payloads ------------------------------------------------------------
    def _symbol(self, market_id):
        return self.exchange.safe_symbol(market_id, None, None, self.exchange.options['defaultType'])

    def _order(self, o):
        if o.get('category', self.category) != self.category:
            return ()
        cum = float(o.get('cumExecQty') or 0.0)
        avg = o.get('avgPrice')
        reason = o.get('rejectReason')
        status = _STATUS.get(o.get('orderStatus'), OPEN)
        if status == CANCELED and expired(o, EXPIRED_WHEN):
            status = EXPIRED
        return (OrderUpdate(
            client_id=o.get('orderLinkId') or None, exchange_id=o.get('orderId'),
            symbol=self._symbol(o['symbol']), status=status,
            filled=cum, remaining=float(o.get('leavesQty') or 0.0),
            average=float(avg) if avg not in (None, '', '0') else None,
            reason=None if reason in (None, '', 'EC_NoError') else reason,
            timestamp=int(o.get('updatedTime') or 0) or None, source='stream'),)

    def _execution(self, e):
        if e.get('category', self.category) != self.category:
            return ()
        fee = float(e.get('execFee') or 0.0)
        if e.get('execType') == 'Funding':
            rules = self.market_rules(self._symbol(e['symbol']))
            return (FundingPayment(asset=rules.settle, amount=-fee, symbol=rules.symbol,
                                   timestamp=int(e.get('execTime') or 0) or None),)
        if e.get('execType') not in (None, 'Trade'):
            return ()
        symbol = self._symbol(e['symbol'])
        fill = Fill(trade_id=str(e['execId']), price=float(e['execPrice']),
                    amount=float(e['execQty']), fee=fee,
                    fee_asset=e.get('feeCurrency') or self._fee_asset(symbol, e),
                    timestamp=int(e.get('execTime') or 0) or None, maker=e.get('isMaker'))
        return (OrderUpdate(client_id=e.get('orderLinkId') or None,
                            exchange_id=e.get('orderId'), symbol=symbol, status=OPEN,
                            fills=[fill], source='stream'),)

    def _fee_asset(self, symbol, e):
        rules = self.market_rules(symbol)
        if rules.contract:
            return rules.settle
        # Spot without feeCurrency: Bybit charges buys in the base coin.
        return rules.base if e.get('side') == 'Buy' else rules.quote

    def _position(self, p):
        if p.get('category', self.category) != self.category:
            return ()
        size = float(p.get('size') or 0.0)
        if p.get('side') == 'Sell':
            size = -size
        return (PositionUpdate(
            symbol=self._symbol(p['symbol']), size=size,
            entry_price=float(p.get('entryPrice') or p.get('avgPrice') or 0.0),
            unrealized_pnl=_num(p.get('unrealisedPnl')), mark_price=_num(p.get('markPrice')),
            liquidation_price=_num(p.get('liqPrice')), leverage=_num(p.get('leverage')),
            margin_mode={0: 'cross', 1: 'isolated'}.get(p.get('tradeMode')),
            timestamp=int(p.get('updatedTime') or 0) or None),)

    def _wallet(self, w):
        balances = {}
        for c in w.get('coin', ()):
            total = float(c.get('walletBalance') or 0.0)
            used = float(c.get('locked') or 0.0)
            balances[c['coin']] = (total - used, used)
        return (BalanceUpdate(balances, w.get('updateTime')),)


_PRIVATE = {'order': BybitStore._order, 'execution': BybitStore._execution,
            'position': BybitStore._position, 'wallet': BybitStore._wallet}


def _num(value):
    return float(value) if value not in (None, '') else None
