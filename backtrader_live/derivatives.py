"""What the broker does differently for perpetual futures.

One-way positions only (hedge mode is refused: backtrader has one position
per data). Leverage and margin mode are applied once per market at start.

Reduce-only, decided so an order does what the strategy asked, as in a
backtest, and never opens the other side when it meant "flat":

- an order of exactly the whole position the other way (what ``close()`` and
  ``order_target_size(0)`` send) is sent reduce-only: if the position shrank
  or vanished meanwhile (a stop filled) the exchange fills only what is left,
  or refuses it (Binance -2022, Bybit 110017) and the strategy sees Rejected
  with that reason, instead of a new position the other way;
- while the kill switch is tripped, the orders it lets through (they reduce)
  are sent reduce-only too, so they cannot add exposure if the position moved;
- any other buy()/sell() is sent as asked: a partial reduction that the
  exchange would refuse when the position moved is not turned into one;
- ``reduceOnly=True``/``False`` given by the strategy always wins.

"Reduces" is risk.reduces_exposure, the kill switch's own definition (one
tolerance): an order the switch lets through as reducing is the order sent
reduce-only.

:class:`DerivativesBroker` picks no mode: a broker of it (BinanceBroker,
BybitBroker, GenericBroker) is made paper or live by ``paper_trading``
(broker.py). Its checks of the settings and its reduce-only decision hold in
both (a paper run refuses what a live one would, and a close() exempt from
the minimum notional live is exempt on paper too); the market settings and
the reduce-only flag are hooks only the live broker calls
(``prepare_market``, ``order_options``).
"""
import logging

from .broker import BrokerBase
from .errors import ConfigError, LiveError, OrderRejected
from .markets import SPOT
from .risk import bar_time, reduces_exposure

log = logging.getLogger(__name__)

MARGIN_MODES = ('isolated', 'cross')


class DerivativesBroker(BrokerBase):
    """BrokerBase plus perpetual futures (a no-op on spot markets); paper or
    live by ``paper_trading``."""

    params = (
        ('leverage', None),       # e.g. 3: applied to each market at start
        ('margin_mode', None),    # 'isolated' or 'cross'; None: leave as is
        ('hedge_mode', False),    # True is refused: one position per data
    )

    def start(self):
        if self.p.hedge_mode:
            raise ConfigError('hedge_mode=True is not supported: backtrader keeps one '
                              'position per data; use one-way mode (the default)')
        if self.p.margin_mode not in (None,) + MARGIN_MODES:
            raise ConfigError('margin_mode must be one of %s, got %r'
                              % (', '.join(MARGIN_MODES), self.p.margin_mode))
        lev = self.p.leverage
        if lev is not None and (not isinstance(lev, (int, float)) or lev < 1):
            raise ConfigError('leverage must be a number >= 1, got %r' % (lev,))
        super().start()

    @property
    def _derivatives(self):
        return self.store is not None and self.store.kind != SPOT

    def prepare_market(self, data):
        if not self._derivatives:
            return
        symbol = data.p.dataname
        if self.p.margin_mode:
            self._setting('margin_mode', self.store.set_margin_mode, symbol,
                          'the exchange refuses a change while a position or order is open')
        if self.p.leverage:
            self._setting('leverage', self.store.set_leverage, symbol,
                          lambda: leverage_range(self.store, symbol))
            self.account.leverage[symbol] = float(self.p.leverage)
        else:
            self.account.leverage.setdefault(symbol, self.store.current_leverage(symbol))

    def _setting(self, name, apply, symbol, hint):
        """Apply a market setting at start; the exchange refusing it (Binance
        -4028/-4048, Bybit 10001/110013/3400045...) is a configuration error,
        not an order rejection. ``hint``: a string, or a callable giving one."""
        value = getattr(self.p, name)
        try:
            apply(symbol, value)
        except OrderRejected as exc:
            hint = hint() if callable(hint) else hint
            raise ConfigError('%s=%r refused for %s: %s; %s' % (name, value, symbol, exc,
                                                                hint)) from None

    def order_options(self, order):
        # LiveBroker's (the live broker is the only one that sends orders)
        params = super().order_options(order)
        if not self._derivatives or 'reduceOnly' in params:
            return params
        why = self._why_reduce_only(order)
        if why:
            params['reduceOnly'] = True
            order.addinfo(sent_reduce_only=why)     # said again if the exchange refuses it
        return params

    def sent_reduce_only(self, order):
        if not self._derivatives:
            return False
        return order.info.get('reduceOnly') is True or (
            'reduceOnly' not in order.info and bool(self._why_reduce_only(order)))

    def _why_reduce_only(self, order):
        pos = self.positions[order.data].size
        if not pos or (pos > 0) == (order.size > 0):
            return None
        if abs(order.size) == abs(pos):     # exact sizes (fills.py): close() sends this
            return 'it closes the whole position'
        if (reduces_exposure(pos, order.size)
                and self.kill_switch.active(bar_time(order.data))):
            return 'the kill switch lets through only orders that reduce'
        return None


def leverage_range(store, symbol):
    """'allowed: 1 to N' from the market's limits (Bybit's leverageFilter) or
    its leverage tiers (Binance's brackets); says so when neither is known."""
    try:
        high = (store.exchange.market(symbol).get('limits', {}).get('leverage') or {}).get('max')
        if not high:
            tiers = store.call('fetch_market_leverage_tiers', symbol)
            high = max((t.get('maxLeverage') or 0) for t in tiers) if tiers else None
    except (LiveError, AttributeError, KeyError, TypeError, ValueError) as exc:
        log.info('%s: leverage range not readable: %s', symbol, exc)
        high = None
    if not high:
        return 'allowed range unknown (see the exchange\'s leverage brackets for %s)' % symbol
    return 'allowed: 1 to %g' % float(high)
