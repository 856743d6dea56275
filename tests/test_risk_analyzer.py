"""RiskAnalyzer: metrics and alerts every bar; with enforce=True a breach trips
the broker's kill switch until its condition clears. Backtests on synthetic
and real BTC/USDT candles, upstream's broker (report only), and a live run."""
import datetime
import logging

import backtrader as bt
import pytest

import backtrader_live as btl
from backtrader_live.analyzers import RiskAnalyzer
from helpers import eventually
from livekit import LiveRun
from test_risk_kit import Script, btc_slice, cerebro, feed, run_script, synthetic_rows
from test_risk_kit import all_of, buy, rejections, sell

KILL = 'kill switch active'
# price 100, up to 110 (the peak), down to 90: 90 units held lose 16.5% of the peak
DIP = synthetic_rows([100.0] * 5 + [110.0] * 5 + [105.0, 100.0, 95.0, 90.0] + [90.0] * 10)
DD_ONLY = dict(_name='risk', max_position_risk=None, daily_loss_limit=None)


def _risk(**params):
    return (RiskAnalyzer, params)


def test_a_drawdown_breach_is_an_alert_logged_and_sent(caplog):
    sent = []
    c = cerebro(DIP, commission=0.0)
    c.trigger_notifications = lambda message, **kw: sent.append((message, kw))
    c.addstrategy(Script, script={2: buy(90)})
    c.addanalyzer(RiskAnalyzer, **DD_ONLY)
    with caplog.at_level(logging.WARNING):
        strat = c.run()[0]
    analysis = strat.analyzers.risk.get_analysis()
    (alert,) = analysis['risk_alerts']
    assert alert['type'] == 'drawdown' and alert['limit'] == 0.15
    assert alert['value'] == pytest.approx((10900 - 9100) / 10900)
    assert alert['timestamp'] == datetime.datetime(2021, 1, 1, 13)   # the bar closing at 90
    assert alert['message'] == 'risk limit breached: drawdown 16.51% > max_drawdown_limit 15.00%'
    assert sent == [(alert['message'], {'level': 'WARNING', 'kind': 'risk_alert', 'data': alert})]
    assert 'RiskAnalyzer: risk limit breached: drawdown 16.51%' in caplog.text
    metrics = analysis['risk_metrics']
    assert metrics['peak_equity'] == 10900
    assert metrics['max_drawdown'] == pytest.approx(0.1651, 1e-3)
    assert metrics['bars'] == len(DIP) and metrics['exposure'] == pytest.approx(8100 / 9100)
    assert analysis['current_status'] == 'warning'
    assert analysis['status_details'] == {'breaches': ['drawdown'], 'enforcing': True,
                                          'kill_switch': ['drawdown']}



class _LoggingScript(Script):
    """backtrader's samples' ``log(txt, dt=None)``: a plain strategy, no mixin."""

    def __init__(self):
        super().__init__()
        self.logged = []

    def log(self, txt, dt=None):
        self.logged.append((txt, dt))


def test_an_alert_reaches_a_plain_strategys_log():
    c = cerebro(DIP, commission=0.0)
    c.addstrategy(_LoggingScript, script={2: buy(90)})
    c.addanalyzer(RiskAnalyzer, **DD_ONLY)
    strat = c.run()[0]
    assert strat.logged == [('RISK ALERT: risk limit breached: drawdown 16.51% > '
                             'max_drawdown_limit 15.00%', None)]


class _BrokenLog(Script):
    def log(self, txt, dt=None):
        raise RuntimeError('log broke')


def test_a_failing_strategy_log_never_breaks_the_run(caplog):
    c = cerebro(DIP, commission=0.0)
    c.addstrategy(_BrokenLog, script={2: buy(90)})
    c.addanalyzer(RiskAnalyzer, **DD_ONLY)
    strat = c.run()[0]
    assert strat.analyzers.risk.get_analysis()['current_status'] == 'warning'
    assert "the strategy's log() failed for drawdown" in caplog.text

def test_alerts_reach_the_notification_channels_of_backtrader_live():
    got = []
    c = cerebro(DIP, commission=0.0)
    c.add_notification_callback(got.append, level='INFO', kinds={'risk_alert'})
    c.addstrategy(Script, script={2: buy(90)})
    c.addanalyzer(RiskAnalyzer, **DD_ONLY)
    strat = c.run()[0]
    (alert,) = strat.analyzers.risk.get_analysis()['risk_alerts']
    eventually(lambda: got, 5)
    (note,) = got
    assert note.kind == 'risk_alert' and note.levelname == 'WARNING'
    assert note.message == alert['message'] and note.data['type'] == 'drawdown'


def test_a_broken_notification_channel_never_reaches_trading(caplog):
    def broken(message, **kw):
        raise RuntimeError('smtp down')
    c = cerebro(DIP, commission=0.0)
    c.trigger_notifications = broken
    c.addstrategy(Script, script={2: buy(90)})
    c.addanalyzer(RiskAnalyzer, **DD_ONLY)
    strat = c.run()[0]
    assert len(strat.analyzers.risk.get_analysis()['risk_alerts']) == 1
    assert 'the notification channel failed for drawdown' in caplog.text


def test_reset_without_a_type_clears_everything_and_rebases():
    def check_and_reset(s):
        risk = s.analyzers.risk
        s.before = (sorted(risk.breaches), s.broker.kill_switch.tripped)
        risk.reset()
        s.after = (risk.breaches, s.broker.kill_switch.tripped)
    strat = run_script(DIP, {2: buy(90), 16: check_and_reset}, commission=0.0,
                       analyzers=[_risk(_name='risk', max_position_risk=None,
                                        daily_loss_limit=0.01)])
    assert strat.before == (['daily_loss', 'drawdown'], True)
    assert strat.after == ([], False)
    metrics = strat.analyzers.risk.get_analysis()['risk_metrics']
    assert metrics['peak_equity'] == metrics['day_start_equity'] == 9100    # re-based
    assert metrics['drawdown'] == metrics['daily_loss'] == 0.0


def test_drawdown_blocks_additions_not_exits_until_reset():
    def reset(s):
        s.analyzers.risk.reset('drawdown')
    script = {2: buy(90), 14: buy(1), 15: sell(10), 17: all_of(reset, buy(1))}
    strat = run_script(DIP, script, commission=0.0, analyzers=[_risk(**DD_ONLY)])
    ((bar, size, reason),) = rejections(strat)
    assert (bar, size) == (14, 1)          # the switch is on before the breach bar's next()
    assert reason.startswith(KILL + ' (drawdown: risk limit breached: drawdown 16.51%')
    assert [e[2] for e in strat.statuses('Completed')] == [90, -10, 1]
    analysis = strat.analyzers.risk.get_analysis()
    assert analysis['current_status'] == 'normal'
    assert analysis['status_details']['kill_switch'] == []
    assert strat.analyzers.risk.get_analysis()['risk_metrics']['peak_equity'] == 9100


def test_on_a_trip_open_orders_that_add_exposure_are_cancelled():
    script = {2: all_of(buy(90), buy(5, price=50.0, exectype=bt.Order.Limit),
                      lambda s: s.sell(size=90, price=50.0, exectype=bt.Order.Stop))}
    strat = run_script(DIP, script, commission=0.0, analyzers=[_risk(**DD_ONLY)])
    (cancelled,) = strat.statuses('Canceled')
    assert cancelled[2] == 5                           # the resting buy
    assert [o.size for o in strat.broker.get_orders_open()] == [-90]   # the stop stays


def test_flatten_closes_positions_on_the_chosen_breaches():
    strat = run_script(DIP, {2: buy(90)}, commission=0.0,
                       analyzers=[_risk(flatten=('drawdown',), **DD_ONLY)])
    assert [e[2] for e in strat.statuses('Completed')] == [90, -90]
    assert strat.held[-1] == 0
    strat = run_script(DIP, {2: buy(90)}, commission=0.0,
                       analyzers=[_risk(flatten=('daily_loss',), **DD_ONLY)])
    assert strat.held[-1] == 90


def test_exposure_breach_clears_as_soon_as_exposure_is_back_under():
    flat = synthetic_rows([100.0] * 12)
    script = {2: buy(40), 4: buy(1), 5: sell(25), 7: buy(1)}
    strat = run_script(flat, script, commission=0.0,
                       analyzers=[_risk(_name='risk', max_drawdown_limit=None)])
    assert [(r[0], r[1]) for r in rejections(strat)] == [(4, 1)]
    assert 'exposure: risk limit breached: gross exposure 40.00% > max_position_risk 30.00%' \
        in rejections(strat)[0][2]
    assert [e[2] for e in strat.statuses('Completed')] == [40, -25, 1]
    analysis = strat.analyzers.risk.get_analysis()
    assert [a['type'] for a in analysis['risk_alerts']] == ['exposure']
    assert analysis['current_status'] == 'normal'


def test_daily_loss_on_the_2020_03_12_crash_clears_the_next_utc_day():
    """Half the account in BTC on 12 March 2020 (BTC fell 18% in the 10:00
    hour); the strategy keeps trying to buy a little every hour."""
    def each(s):
        if len(s) == 1:
            s.losses = []
        s.losses.append(s.analyzers.risk.get_analysis()['risk_metrics']['daily_loss'])
        if len(s) > 1:
            s.buy(size=0.001)
        else:
            s.buy(size=0.5 * s.broker.getvalue() / s.data.close[0])

    rows = btc_slice((2020, 3, 11), (2020, 3, 13, 3))
    strat = run_script(rows, each=each,
                       analyzers=[_risk(_name='risk', max_drawdown_limit=None,
                                        max_position_risk=None)])
    first, second = strat.analyzers.risk.get_analysis()['risk_alerts']
    assert first['type'] == 'daily_loss' and first['limit'] == 0.05
    assert first['timestamp'] == datetime.datetime(2020, 3, 12, 10)
    breach_bar = next(i for i, loss in enumerate(strat.losses) if loss > 0.05)
    assert strat.when(breach_bar + 1) == first['timestamp']     # the first bar past 5%
    assert first['value'] == strat.losses[breach_bar]
    refused = sorted(strat.when(bar) for bar, _, _ in rejections(strat))
    day_two = datetime.datetime(2020, 3, 13)
    assert refused[0] == first['timestamp']
    assert [t for t in refused if t < day_two][-1] == datetime.datetime(2020, 3, 12, 23)
    # A new UTC day: trading resumes; the day's own losses count from its start.
    assert day_two not in refused
    assert any(strat.when(bar) == day_two for bar, _, _, _ in strat.statuses('Completed'))
    assert second['timestamp'] == datetime.datetime(2020, 3, 13, 1)


class AverageDown(bt.Strategy):
    """A losing habit: buy 5% of equity more every day while BTC falls."""

    def __init__(self):
        self.rejected = []
        self.seen_drawdown = []

    def notify_order(self, order):
        if order.status == order.Rejected:
            self.rejected.append(order.info.reject_reason)

    def next(self):
        risk = getattr(self.analyzers, 'risk', None)
        if risk is not None:
            self.seen_drawdown.append(risk.get_analysis()['risk_metrics']['drawdown'])
        if self.data.datetime.datetime(0).hour == 0:
            self.buy(size=0.05 * self.broker.getvalue() / self.data.close[0])


def _average_down(enforce, flatten):
    c = cerebro(btc_slice((2018, 1, 7), (2018, 2, 7)))
    c.addstrategy(AverageDown)
    c.addanalyzer(RiskAnalyzer, _name='risk', enforce=enforce, flatten=flatten,
                  max_position_risk=None, daily_loss_limit=None)
    c.addanalyzer(bt.analyzers.DrawDown, _name='dd')
    strat = c.run()[0]
    return strat, strat.analyzers.dd.get_analysis().max.drawdown / 100.0


def test_the_kill_switch_stops_a_losing_strategy_at_the_limit_on_real_btc():
    """January 2018 on the real candles: the same strategy, unprotected,
    stopped from adding, and stopped and flattened."""
    free, free_dd = _average_down(enforce=False, flatten=False)
    blocked, blocked_dd = _average_down(enforce=True, flatten=False)
    flat, flat_dd = _average_down(enforce=True, flatten=True)
    assert free_dd > 0.5 and not free.rejected            # reported, never enforced
    assert len(free.analyzers.risk.get_analysis()['risk_alerts']) == 1
    # Enforced: the first bar past 15% trips the switch, every later buy is refused.
    trip = next(i for i, dd in enumerate(flat.seen_drawdown) if dd > 0.15)
    assert all(dd <= 0.15 for dd in flat.seen_drawdown[:trip])
    assert flat.rejected and all(r.startswith(KILL + ' (drawdown') for r in flat.rejected)
    assert blocked.rejected == flat.rejected
    assert blocked_dd < free_dd * 0.7                       # no more adding
    assert flat_dd < 0.17 and flat.position.size == 0       # out one bar after the breach
    assert blocked.position.size > 0


def test_with_upstream_broker_it_reports_and_says_it_cannot_enforce(caplog):
    c = bt.Cerebro(stdstats=False)                        # upstream Cerebro and BackBroker
    c.adddata(feed(DIP))
    c.addstrategy(Script, script={2: buy(90), 15: buy(1)})
    c.addanalyzer(RiskAnalyzer, **DD_ONLY)
    with caplog.at_level(logging.WARNING):
        strat = c.run()[0]
    assert caplog.text.count('cannot enforce risk limits') == 1
    assert "needs backtrader_live's broker" in caplog.text
    analysis = strat.analyzers.risk.get_analysis()
    assert [a['type'] for a in analysis['risk_alerts']] == ['drawdown']
    assert analysis['status_details']['enforcing'] is False
    assert [e[2] for e in strat.statuses('Completed')] == [90, 1]     # not blocked


def test_with_the_gate_disabled_it_reports_only(caplog):
    strat = run_script(DIP, {2: buy(90), 15: buy(1)}, commission=0.0, risk_management=False,
                       analyzers=[_risk(**DD_ONLY)])
    assert 'risk_management=False' in caplog.text
    assert not rejections(strat) and strat.analyzers.risk.get_analysis()['risk_alerts']


def test_limits_set_to_none_are_off_and_alerts_are_bounded():
    swing = synthetic_rows([100.0] * 40)
    script = {i: (buy if i % 4 == 2 else sell)(40) for i in range(2, 36, 2)}
    strat = run_script(swing, script, commission=0.0,
                       analyzers=[_risk(_name='risk', max_drawdown_limit=None,
                                        daily_loss_limit=None, max_alerts=3)])
    alerts = strat.analyzers.risk.get_analysis()['risk_alerts']
    assert len(alerts) == 3 and {a['type'] for a in alerts} == {'exposure'}
    assert alerts[-1]['timestamp'] > alerts[0]['timestamp']        # the newest kept
    strat = run_script(DIP, {2: buy(90)}, commission=0.0,
                       analyzers=[_risk(_name='risk', max_drawdown_limit=None,
                                        max_position_risk=None, daily_loss_limit=None)])
    assert strat.analyzers.risk.get_analysis()['risk_alerts'] == []


def test_live_breach_blocks_the_increase_and_lets_the_close_through(sim):
    """1 BTC (~4200 USDT) of a 10000 USDT account is 42% exposure: over 30%."""
    cb = btl.Cerebro()
    cb.addanalyzer(RiskAnalyzer, _name='risk')
    script = {6: lambda s: s.buy(size=1.0), 8: lambda s: s.buy(size=0.01),
              9: lambda s: s.close(), 11: lambda s: s.buy(size=0.01)}
    run = LiveRun(sim, script=script, max_bars=6, cerebro=cb).start()
    run.step(6)
    run.join()
    orders = run.rec.orders
    assert [o[0] for o in orders] == ['Submitted', 'Accepted', 'Completed',   # the 1 BTC buy
                                      'Submitted', 'Rejected',                # more: refused
                                      'Submitted', 'Accepted', 'Completed',   # the close
                                      'Submitted', 'Accepted', 'Completed']   # cleared: fine
    assert orders[4][4].startswith(KILL + ' (exposure: risk limit breached: gross exposure')
    assert [(o.side, o.status) for o in sim.orders()] == [('BUY', 'FILLED'), ('SELL', 'FILLED'),
                                                          ('BUY', 'FILLED')]
    analysis = run.rec.strategy.analyzers.risk.get_analysis()
    assert [a['type'] for a in analysis['risk_alerts']] == ['exposure']
    assert analysis['current_status'] == 'normal'
