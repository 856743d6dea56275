"""RiskBasedSizer: a stop at N x ATR loses at most a set share of equity.

    size = risk_per_trade x equity / (ATR x atr_multiplier)

capped so the position stays within ``max_position_pct`` of equity (and, for
spot buys, within the cash available), then rounded *down* to the market's
amount step. A size under the market's minimum amount or notional becomes 0
and the strategy is told why through ``notify_store`` (never a silent skip).

ATR is backtrader's own ``bt.ind.ATR`` (Wilder's smoothing) on each of the
strategy's datas, created when the sizer is attached to the strategy (and
wrapped so it does not delay the strategy's first ``next()``); until it has
``volatility_period`` + 1 bars the size falls back to ``fallback_pct`` of
cash (10%, as the seed asked), still capped and rounded.

An order against the position (``sell()`` while long, ``buy()`` while
short) is sized to close it, as backtrader's own sizers do.
"""
import collections
import logging
import math
from decimal import ROUND_FLOOR, Decimal

import backtrader as bt

from ..wilder import PatientATR, PreloadedATR, arrays_in_advance
from ..risk import market_rules, notional

log = logging.getLogger(__name__)

#: why a sizing returned 0 (``RiskBasedSizer.last.reason``)
NO_EQUITY, POSITION_CAP, NO_CASH, BELOW_STEP = 'no_equity', 'position_cap', 'no_cash', 'below_step'
BELOW_MIN_AMOUNT, BELOW_MIN_NOTIONAL = 'below_min_amount', 'below_min_notional'

#: what one call decided; ``method`` is 'atr', 'fallback' or 'close'
Sizing = collections.namedtuple('Sizing', 'size reason method atr raw')


def round_down(size, step):
    """The largest multiple of ``step`` not above ``size`` (exact decimal arithmetic).

    ``int()`` or float division would either lose crypto's fractions or land
    a hair above the step; Decimal on the shortest repr of each float does
    neither. No step (None or 0) leaves the size unrounded.
    """
    if size <= 0:
        return 0.0
    if not step:
        return float(size)
    dstep = Decimal(repr(float(step)))
    units = (Decimal(repr(float(size))) / dstep).to_integral_value(ROUND_FLOOR)
    return float(units * dstep)


def unit_risk(value_of, price, stop, long):
    """Loss of one unit when the price moves ``stop`` against the position.

    ``value_of(price)`` is one unit's notional; the difference of two
    notionals is right for spot, multipliers and inverse contracts alike. A
    stop beyond zero puts the whole unit at risk.
    """
    adverse = price - stop if long else price + stop
    if adverse <= 0:
        return value_of(price)
    return abs(value_of(price) - value_of(adverse))


class RiskBasedSizer(bt.Sizer):
    """Volatility-scaled position sizing that is also a valid exchange order.

    Params (fractions, not percents):

    - ``risk_per_trade`` (0.02): share of the base lost if the stop is hit.
    - ``max_position_pct`` (0.3): the position's cap, as a share of equity.
    - ``volatility_period`` (20): Wilder ATR period.
    - ``atr_multiplier`` (2.0): stop distance in ATRs.
    - ``base`` ('equity'): 'equity' (broker value) or 'cash' (free cash);
      the risk amount never exceeds ``risk_per_trade`` of equity either way.
    - ``fallback_pct`` (0.10): share of cash used while ATR is not ready.
    - ``step`` / ``min_amount`` / ``min_notional`` (None): override the
      market's; None takes the market's through the broker (live and paper
      runs on an exchange) or means "no rule" in a plain backtest.
    - ``notify`` (True): tell the strategy (``notify_store``) when the size is 0.
    """

    params = (
        ('risk_per_trade', 0.02),
        ('max_position_pct', 0.3),
        ('volatility_period', 20),
        ('atr_multiplier', 2.0),
        ('base', 'equity'),
        ('fallback_pct', 0.10),
        ('step', None),
        ('min_amount', None),
        ('min_notional', None),
        ('notify', True),
    )

    def __init__(self):
        if self.p.base not in ('equity', 'cash'):
            raise ValueError("RiskBasedSizer base must be 'equity' or 'cash', got %r"
                             % (self.p.base,))
        self._atrs = {}
        self._atr_owner = None
        self.last = None            # the last Sizing, for inspection and tests

    # -- ATR ---------------------------------------------------------------------------
    def set(self, strategy, broker):
        super().set(strategy, broker)
        if strategy is not self._atr_owner:
            self._atr_owner = strategy
            self._atrs = self._make_atrs(strategy)

    def _make_atrs(self, strategy):
        """One bt.ind.ATR per data, owned by the strategy so Cerebro computes it.

        Created while the strategy is being set up (``addsizer`` or
        ``setsizer`` in ``__init__``/``start``); added to a running strategy an
        indicator would miss its history, so then the fallback applies.

        In a preloaded runonce backtest the same values come from the datas'
        arrays at the first sizing (:class:`PreloadedATR`): the sizer runs
        only when an order is placed, an indicator would cost every bar.
        """
        if not isinstance(strategy, bt.Strategy):
            return {}
        if len(strategy):
            log.warning('RiskBasedSizer attached after the run started: no ATR, '
                        'sizes use fallback_pct of cash')
            return {}
        atr = PreloadedATR if arrays_in_advance(strategy) else PatientATR
        return {d: atr(d, period=self.p.volatility_period) for d in strategy.datas}

    def atr(self, data):
        """The data's current ATR, or None while it is not ready (or not positive)."""
        ind = self._atrs.get(data)
        if ind is None or not len(ind):
            return None
        value = ind[0]
        return value if value > 0 and not math.isnan(value) else None

    # -- sizing --------------------------------------------------------------------------
    def _getsizing(self, comminfo, cash, data, isbuy):
        held = self.broker.getposition(data).size
        if held and (held > 0) != isbuy:
            sizing = self._closing(data, held)
        else:
            sizing = self._opening(comminfo, cash, data, isbuy, held)
        self.last = sizing
        return sizing.size

    def _rules(self, data):
        """(step, min_amount, min_notional): our params first, then the market's."""
        rules = market_rules(self.broker, data)

        def pick(name, attr):
            mine = getattr(self.p, name)
            return mine if mine is not None else getattr(rules, attr, None)
        return pick('step', 'amount_step'), pick('min_amount', 'min_amount'), \
            pick('min_notional', 'min_notional')

    def _opening(self, comminfo, cash, data, isbuy, held):
        price = data.close[0]
        equity = self.broker.getvalue()
        if not equity > 0 or not price > 0:
            return self._zero(data, isbuy, NO_EQUITY, 'opening', None, 0.0,
                              'equity %s / price %s leave nothing to size' % (equity, price))
        value_of = lambda p: notional(self.broker, data, 1.0, p)   # noqa: E731
        atr = self.atr(data)
        if atr is not None:
            base = equity if self.p.base == 'equity' else min(cash, equity)
            risk = unit_risk(value_of, price, atr * self.p.atr_multiplier, isbuy)
            method, raw = 'atr', self.p.risk_per_trade * base / risk
        else:
            method, raw = 'fallback', self.p.fallback_pct * max(cash, 0.0) / value_of(price)
        room = self.p.max_position_pct * equity / value_of(price) - abs(held)
        if room <= 0:
            return self._zero(data, isbuy, POSITION_CAP, method, atr, raw,
                              'the position already uses max_position_pct %.0f%% of equity'
                              % (100 * self.p.max_position_pct))
        size = min(raw, room)
        if isbuy and comminfo.stocklike:
            unit_cost = comminfo.getoperationcost(1.0, price) + comminfo.getcommission(1.0, price)
            size = min(size, max(cash, 0.0) / unit_cost)
            if size <= 0:
                return self._zero(data, isbuy, NO_CASH, method, atr, raw,
                                  'no cash available (%s)' % cash)
        return self._valid(data, isbuy, size, method, atr, raw)

    def _closing(self, data, held):
        return self._valid(data, held < 0, abs(held), 'close', self.atr(data), abs(held))

    def _valid(self, data, isbuy, size, method, atr, raw):
        """Round down to the step, then hold the result to the market's minimums."""
        step, min_amount, min_notional = self._rules(data)
        size = round_down(size, step)
        price = data.close[0]
        if size <= 0:
            return self._zero(data, isbuy, BELOW_STEP, method, atr, raw,
                              'size %.10g rounds down to 0 at the amount step %s' % (raw, step))
        if min_amount and size < min_amount:
            return self._zero(data, isbuy, BELOW_MIN_AMOUNT, method, atr, raw,
                              'size %.10g is below the minimum amount %s' % (size, min_amount))
        if min_notional and size * price < min_notional:
            return self._zero(data, isbuy, BELOW_MIN_NOTIONAL, method, atr, raw,
                              'notional %.8g (%.10g x %s) is below the minimum %s'
                              % (size * price, size, price, min_notional))
        return Sizing(size, None, method, atr, raw)

    def _zero(self, data, isbuy, reason, method, atr, raw, why):
        message = 'RiskBasedSizer: no %s of %s: %s' % (
            'buy' if isbuy else 'sell', data._name or 'data', why)
        log.info(message)
        if self.p.notify and self.strategy is not None:
            # notify_store(msg, *args, **kwargs) is every strategy's upstream hook
            # for messages that are not orders; kwargs carry the machine-readable part.
            self.strategy.notify_store(message, source='RiskBasedSizer', reason=reason,
                                       data=data, isbuy=isbuy)
        return Sizing(0.0, reason, method, atr, raw)
