"""RiskAnalyzer: measures drawdown, exposure and the day's loss each bar, and
(with ``enforce=True``) trips the broker's kill switch on a breach.

Measured in ``notify_fund``, which backtrader calls once per bar *after* the
broker has processed the bar and *before* the strategy's ``next()``: a limit
breached at this bar already blocks the orders the strategy places in it.

Limits and how a breach clears (limits are fractions; None disables one):

- ``max_drawdown_limit`` (0.15): drawdown from the peak equity; stays until
  :meth:`RiskAnalyzer.reset` (a human decision, not a price move).
- ``daily_loss_limit`` (0.05): loss since the start of the UTC day (the
  equity at the last bar of the previous day); clears at the next UTC day.
- ``max_position_risk`` (0.3): gross exposure (sum of position notionals)
  over equity; clears as soon as exposure is back under the limit.

Days follow the bars' timestamps, which backtrader_live's feeds give in UTC.
"""
import collections
import datetime
import logging
import math

import backtrader as bt

from ..risk import KillSwitch, gross_exposure, increases_exposure, open_orders

log = logging.getLogger(__name__)

DRAWDOWN, EXPOSURE, DAILY_LOSS = 'drawdown', 'exposure', 'daily_loss'
NORMAL, WARNING = 'normal', 'warning'      # current_status of get_analysis()
_LIMIT_PARAM = {DRAWDOWN: 'max_drawdown_limit', EXPOSURE: 'max_position_risk',
                DAILY_LOSS: 'daily_loss_limit'}
_LABEL = {DRAWDOWN: 'drawdown', EXPOSURE: 'gross exposure', DAILY_LOSS: 'loss today'}


def next_utc_midnight(dt):
    return datetime.datetime.combine(dt.date() + datetime.timedelta(days=1), datetime.time())


class RiskAnalyzer(bt.Analyzer):
    """Risk metrics and alerts each bar; a kill switch in the broker on breach.

    Params: ``max_drawdown_limit``, ``max_position_risk``, ``daily_loss_limit``
    (see the module docstring), ``enforce`` (True: trip the broker's kill
    switch), ``cancel_open`` (True: on a trip, cancel open orders that would
    add exposure), ``flatten`` (False; True or a collection of alert types:
    close every position on those breaches), ``max_alerts`` (1000: the alert
    history is bounded).

    ``get_analysis()``: ``risk_metrics`` (current and worst values),
    ``risk_alerts`` (``{type, value, limit, timestamp, message}``, oldest
    first), ``current_status`` ('normal', or 'warning' while a limit is in
    breach) and ``status_details`` (the breaches, whether they are enforced,
    the kill switch's active reasons).

    Each alert is logged, sent to Cerebro's notification channels and, if the
    strategy has a ``log(txt, ...)`` method (backtrader's samples all do),
    handed to it as well.

    Enforcement needs backtrader_live's broker (``BrokerBase`` or an exchange
    broker, paper or live); with another broker the analyzer only reports.
    """

    params = (
        ('max_drawdown_limit', 0.15),
        ('max_position_risk', 0.3),
        ('daily_loss_limit', 0.05),
        ('enforce', True),
        ('cancel_open', True),
        ('flatten', False),
        ('max_alerts', 1000),
    )

    def start(self):
        self._alerts = collections.deque(maxlen=self.p.max_alerts)
        self._breaches = {}          # type -> the alert that opened the breach
        self._peak = None
        self._day = None
        self._day_start = None
        self._last_value = None
        self._last_dt = None
        self._bars = 0
        # The last bar's (equity, peak, day start, drawdown, exposure, daily loss)
        # and the worst ratios so far; get_analysis() makes the dict of them.
        self._now = (None, None, None, 0.0, 0.0, 0.0)
        self._worst = dict.fromkeys((DRAWDOWN, EXPOSURE, DAILY_LOSS), 0.0)
        self.enforcing = self.p.enforce and self._can_enforce()
        # Looked up once, used every bar (a running strategy keeps them).
        self._datetime = self.strategy.lines.datetime
        self._broker, self._datas = self.strategy.broker, tuple(self.strategy.datas)

    def _can_enforce(self):
        """Say once, clearly, when a breach can only be reported."""
        broker = self.strategy.broker
        if not isinstance(getattr(broker, 'kill_switch', None), KillSwitch):
            log.warning('RiskAnalyzer: %s cannot enforce risk limits (that needs backtrader_live'
                        "'s broker, e.g. backtrader_live.BrokerBase or an exchange broker); "
                        'breaches are reported only', type(broker).__name__)
            return False
        if not broker.p.risk_management:
            log.warning('RiskAnalyzer: the broker has risk_management=False, so its gate and '
                        'kill switch are off; breaches are reported only')
            return False
        return True

    @property
    def kill_switch(self):
        return self.strategy.broker.kill_switch if self.enforcing else None

    # -- each bar -------------------------------------------------------------------------
    # notify_fund runs every bar of every backtest, so it does the least that
    # still decides breaches exactly: a float date number instead of a
    # datetime (built only for an alert), max() spelt out as comparisons, and
    # the limits gone through only on a bar where one breaches or clears.
    def notify_fund(self, cash, value, fundvalue, shares):
        dtnum = self._datetime[0]
        if dtnum != self._last_dt:
            self._bars += 1
            day = math.floor(dtnum)              # whole days: the UTC date
            if day != self._day:
                self._roll_day(day)
        self._last_dt, self._last_value = dtnum, value
        drawdown, loss, exposure = self._measure(value)
        if self._limits_act(drawdown, loss, exposure):
            self._check_limits(dtnum, {DRAWDOWN: drawdown, DAILY_LOSS: loss,
                                       EXPOSURE: exposure})

    def _roll_day(self, day):
        """At a new UTC day the loss is counted from the previous bar's equity."""
        if self._day == day:
            return
        self._day = day
        self._day_start = self._last_value
        if DAILY_LOSS in self._breaches:
            self._clear(DAILY_LOSS, 'a new UTC day began')

    def _measure(self, value):
        """Record this bar's metrics; returns (drawdown, daily loss, exposure)."""
        start = self._day_start
        if start is None:
            start = self._day_start = value
        peak = self._peak
        if peak is None or value > peak:         # max(peak, value)
            peak = self._peak = value
        drawdown = (peak - value) / peak if peak > 0 else 0.0
        gross = gross_exposure(self._broker, self._datas)
        exposure = gross / value if value > 0 else (math.inf if gross else 0.0)
        loss = max(0.0, (start - value) / start) if start and start > 0 else 0.0
        self._now = (value, peak, start, drawdown, exposure, loss)
        worst = self._worst
        if drawdown > worst[DRAWDOWN]:           # max(worst, now), as the others
            worst[DRAWDOWN] = drawdown
        if exposure > worst[EXPOSURE]:
            worst[EXPOSURE] = exposure
        if loss > worst[DAILY_LOSS]:
            worst[DAILY_LOSS] = loss
        return drawdown, loss, exposure

    def _limits_act(self, drawdown, loss, exposure):
        """Whether :meth:`_check` does anything this bar: a breach of a limit
        newly exceeded, or the clearing of an exposure breach back within its
        limit (a drawdown breach waits for ``reset()``, a daily-loss one for
        the next UTC day). A limit of None is off. Most bars: no."""
        p, open_ = self.p, self._breaches
        limit = p.max_drawdown_limit
        if limit is not None and DRAWDOWN not in open_ and drawdown > limit:
            return True
        limit = p.daily_loss_limit
        if limit is not None and DAILY_LOSS not in open_ and loss > limit:
            return True
        limit = p.max_position_risk
        if limit is None:
            return False
        return exposure <= limit if EXPOSURE in open_ else exposure > limit

    def _check_limits(self, dtnum, values):
        for kind in (DRAWDOWN, DAILY_LOSS, EXPOSURE):
            limit = getattr(self.p, _LIMIT_PARAM[kind])
            if limit is not None and (kind in self._breaches or values[kind] > limit):
                self._check(kind, values[kind], dtnum)

    def _check(self, kind, value, dtnum):
        limit = getattr(self.p, _LIMIT_PARAM[kind])
        if limit is None:
            return
        if kind in self._breaches:
            if kind == EXPOSURE and value <= limit:
                self._clear(kind, 'exposure %.1f%% is back within %.1f%%'
                            % (100 * value, 100 * limit))
            return
        if value > limit:
            self._breach(kind, value, limit, bt.num2date(dtnum))

    # -- breaches -------------------------------------------------------------------------
    def _breach(self, kind, value, limit, dt):
        alert = {'type': kind, 'value': value, 'limit': limit, 'timestamp': dt,
                 'message': 'risk limit breached: %s %.2f%% > %s %.2f%%' % (
                     _LABEL[kind], 100 * value, _LIMIT_PARAM[kind], 100 * limit)}
        self._breaches[kind] = alert
        self._alerts.append(alert)
        self._emit_alert(alert)
        if self.enforcing:
            self._enforce(kind, alert, dt)

    def _enforce(self, kind, alert, dt):
        until = next_utc_midnight(dt) if kind == DAILY_LOSS else None
        self.kill_switch.trip(kind, alert['message'], since=dt, until=until)
        if self.p.cancel_open:
            self._cancel_increasing()
        flatten = self.p.flatten
        if flatten is True or (flatten and kind in flatten):
            self._flatten()

    def _cancel_increasing(self):
        broker = self.strategy.broker
        for order in open_orders(broker):
            if increases_exposure(broker, order):
                log.warning('RiskAnalyzer: cancelling open order %s: it would add exposure',
                            order.ref)
                broker.cancel(order)

    def _flatten(self):
        for data in self.strategy.datas:
            if self.strategy.getposition(data).size:
                log.warning('RiskAnalyzer: closing the %s position', data._name or 'data')
                self.strategy.close(data=data)

    def _clear(self, kind, why):
        self._breaches.pop(kind, None)
        log.info('RiskAnalyzer: %s breach cleared: %s', kind, why)
        if self.enforcing:
            self.kill_switch.clear(kind)

    def _emit_alert(self, alert):
        """Log the alert, hand it to Cerebro's notification channel if any,
        and to the strategy's own ``log()`` if it has one.

        Neither a broken channel nor a failing ``log()`` may break trading,
        so both are guarded and only logged.
        """
        log.warning('RiskAnalyzer: %s', alert['message'])
        strategy_log = getattr(self.strategy, 'log', None)
        if callable(strategy_log):
            try:
                strategy_log('RISK ALERT: %s' % alert['message'])
            except Exception:
                log.exception('RiskAnalyzer: the strategy\'s log() failed for %s',
                              alert['type'])
        cerebro = getattr(self.strategy, 'cerebro', None)
        trigger = getattr(cerebro, 'trigger_notifications', None)
        if not callable(trigger):
            return
        try:
            trigger(alert['message'], level='WARNING', kind='risk_alert', data=alert)
        except Exception:
            log.exception('RiskAnalyzer: the notification channel failed for %s', alert['type'])

    # -- operator API ---------------------------------------------------------------------
    def reset(self, kind=None):
        """Clear breaches (all, or one type) after a human looked at them.

        Clearing the drawdown re-bases the peak to the current equity and
        clearing the daily loss re-bases the day's start, otherwise the very
        next bar would breach again.
        """
        kinds = [kind] if kind else list(_LIMIT_PARAM)
        for k in kinds:
            if k == DRAWDOWN:
                self._peak = self._last_value
            elif k == DAILY_LOSS:
                self._day_start = self._last_value
            if k in self._breaches:
                self._clear(k, 'reset()')

    @property
    def breaches(self):
        """The alert types currently in breach."""
        return list(self._breaches)

    def get_analysis(self):
        switch = getattr(self.strategy.broker, 'kill_switch', None)
        details = {
            'breaches': list(self._breaches),
            'enforcing': self.enforcing,
            'kill_switch': sorted(switch.active()) if isinstance(switch, KillSwitch) else [],
        }
        return {'risk_metrics': self._metrics(), 'risk_alerts': list(self._alerts),
                'current_status': WARNING if self._breaches else NORMAL,
                'status_details': details}

    def _metrics(self):
        equity, peak, start, drawdown, exposure, loss = self._now
        worst = self._worst
        return dict(equity=equity, peak_equity=peak, drawdown=drawdown,
                    max_drawdown=worst[DRAWDOWN], exposure=exposure,
                    max_exposure=worst[EXPOSURE], daily_loss=loss,
                    max_daily_loss=worst[DAILY_LOSS], day_start_equity=start, bars=self._bars)
