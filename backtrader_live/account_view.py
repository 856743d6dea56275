"""The account view role of a store: markets, balances, positions, leverage.

Read-side REST of the account: the markets and their rules (the amount
step, price tick and minimums that make every quantity exact), the
balances, the open positions and orders, and the leverage/margin settings.

Every call goes through the store (its *owner*): ``owner.call`` for the
error map and retries, and the exchange hooks (``wallet_balances``,
``position_updates``, ``open_order_queries``, ``leverage_setting``...) that
exchange modules override on their store class.
"""
import logging

from .clients import share_markets
from .errors import ConfigError, LiveError
from .events import position_from_ccxt
from .markets import SPOT, kind_of, symbol_hint

log = logging.getLogger(__name__)

_ZERO = {'free': 0.0, 'used': 0.0, 'total': 0.0, 'wallet': 0.0}


class MarketRules:
    """What the exchange enforces on one market, read from ccxt's market."""

    __slots__ = ('symbol', 'base', 'quote', 'settle', 'amount_step', 'price_tick',
                 'min_amount', 'min_notional', 'maker_fee', 'taker_fee',
                 'contract', 'contract_size', 'inverse', 'info')

    def __init__(self, market):
        precision = market.get('precision') or {}
        limits = market.get('limits') or {}
        self.symbol = market['symbol']
        self.base = market.get('base')
        self.quote = market.get('quote')
        self.amount_step = precision.get('amount')
        self.price_tick = precision.get('price')
        self.min_amount = (limits.get('amount') or {}).get('min')
        self.min_notional = (limits.get('cost') or {}).get('min')
        self.maker_fee = market.get('maker') or 0.0
        self.taker_fee = market.get('taker') or 0.0
        self.contract = bool(market.get('contract'))
        self.contract_size = market.get('contractSize') or 1.0
        self.inverse = bool(market.get('inverse'))
        # The asset PnL, fees and margin are counted in (USDT, or BTC for inverse).
        self.settle = market.get('settle') or self.quote
        self.info = market

    def __repr__(self):
        return ('MarketRules(%s step=%s tick=%s min_amount=%s min_notional=%s)'
                % (self.symbol, self.amount_step, self.price_tick,
                   self.min_amount, self.min_notional))


class AccountView:
    """Markets and account state of one store, over REST."""

    def __init__(self, owner, lock):
        self._owner = owner
        self._lock = lock
        self.markets = None

    # -- markets ------------------------------------------------------------
    def get_markets(self):
        """ccxt's markets, loaded once (load_markets caches them)."""
        owner = self._owner
        with self._lock:
            if self.markets is None:
                self.markets = owner.call('load_markets')
                first = owner._clients.first
                if owner.exchange is not first:     # loaded by another thread
                    share_markets(owner.exchange, first)
            return self.markets

    def market_rules(self, symbol):
        owner = self._owner
        markets = owner.get_markets()
        market = markets.get(symbol)
        if market is None or kind_of(market) != owner.kind:
            known = [s for s, m in markets.items() if kind_of(m) == owner.kind]
            raise ConfigError(symbol_hint(symbol, owner.kind, owner.exchange_name,
                                          owner.p.market_type, known))
        return MarketRules(market)

    # -- balances -----------------------------------------------------------
    def get_balance(self, currency=None):
        if currency is not None:
            return float(self.get_balance_details(currency)['free'])
        return self._owner._balances()

    def get_balance_details(self, currency):
        return self._owner._balances().get(currency, dict(_ZERO))

    def balances(self):
        owner = self._owner
        raw = owner.call('fetch_balance')
        wallets = owner.wallet_balances(raw.get('info') or {})
        return {k: {'free': v.get('free') or 0.0, 'used': v.get('used') or 0.0,
                    'total': v.get('total') or 0.0,
                    'wallet': wallets.get(k, v.get('total') or 0.0)}
                for k, v in raw.items()
                if isinstance(v, dict) and k not in ('free', 'used', 'total', 'info')}

    # -- positions and orders -------------------------------------------------
    def get_positions(self, symbols=None):
        owner = self._owner
        if owner.kind != SPOT:
            return [dict(vars(p), side='long' if p.size > 0 else 'short', size=abs(p.size))
                    for p in owner.position_updates(symbols)]
        return self._spot_holdings(symbols)

    def position_updates(self, symbols=None, params=None):
        raw = self._owner.call('fetch_positions', symbols, params or {})
        return [u for u in map(position_from_ccxt, raw) if u.size]

    def _spot_holdings(self, symbols):
        owner = self._owner
        markets = owner.get_markets()
        out = []
        for asset, bal in owner.get_balance().items():
            if not bal['total']:
                continue
            for symbol, m in markets.items():
                if m.get('base') == asset and (symbols is None or symbol in symbols):
                    out.append({'symbol': symbol, 'side': 'long',
                                'size': bal['total'], 'asset': asset})
        return out

    def get_open_orders(self, symbol=None):
        owner = self._owner
        found = []
        for params in owner.open_order_queries():
            found += owner.call('fetch_open_orders', symbol, None, None, dict(params))
        return found

    # -- leverage and margin ------------------------------------------------------
    def setting(self, method, value, symbol, unchanged_codes):
        """Set leverage or margin mode; "already so" (an exchange code) is no error."""
        try:
            return self._owner.call(method, value, symbol)
        except LiveError as exc:
            if any(code in str(exc) for code in unchanged_codes):
                log.info('%s %s: %s already in force', symbol, method, value)
                return None
            raise

    def current_leverage(self, symbol):
        owner = self._owner
        leverage = owner.leverage_setting(symbol)
        if not leverage:
            log.warning('%s reports no leverage for %s: counting margin at 1x (pass '
                        'broker_kwargs={"leverage": N} to set it)', owner.exchange_name, symbol)
            return 1.0
        return leverage

    def leverage_setting(self, symbol):
        for raw in self._owner.call('fetch_positions', [symbol], {}):
            if raw.get('symbol') == symbol and raw.get('leverage'):
                return float(raw['leverage'])
        return None
