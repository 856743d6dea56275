"""The original design's setup, the Cerebro methods, and everything that
triggers on its own, in backtests (fast, no exchange): fills, trades, risk
alerts from an analyzer, a run that dies; LiveStrategy's log and helpers."""
import logging
import pickle
import threading

import backtrader
import pytest

import backtrader_live as btl
from backtrader_live.errors import ConfigError
from backtrader_live.notifications import (CallbackChannel, LogChannel, NotificationAnalyzer,
                                           WebhookChannel, describe_data_status)
from notifykit import Collector, bt_live_threads

PRICES = [100, 101, 103, 102, 105, 107, 106, 108, 110, 109, 111, 112]


@pytest.fixture
def csv_data(tmp_path):
    path = tmp_path / 'bars.csv'
    # hourly bars from 2024-01-01 00:00; open = close, so fills are easy to check
    rows = ['2024-01-01 %02d:00:00,%s,%s,%s,%s,10' % (i, p, p + 1, p - 1, p)
            for i, p in enumerate(PRICES)]
    path.write_text('\n'.join(rows) + '\n')

    def make():
        return btl.feeds.GenericCSVData(
            dataname=str(path), headers=False, dtformat='%Y-%m-%d %H:%M:%S', datetime=0,
            open=1, high=2, low=3, close=4, volume=5, openinterest=-1, name='TEST',
            timeframe=btl.TimeFrame.Minutes, compression=60)
    return make


class BuyThenClose(backtrader.Strategy):
    """An upstream strategy: it knows nothing about notifications."""

    params = (('buy_at', 2), ('close_at', 6), ('size', 2))

    def next(self):
        if len(self) == self.p.buy_at:
            self.buy(size=self.p.size)
        elif len(self) == self.p.close_at:
            self.close()


def _cerebro(csv_data, strategy=BuyThenClose, **kwargs):
    cerebro = btl.Cerebro(stdstats=False)
    cerebro.adddata(csv_data())
    cerebro.addstrategy(strategy, **kwargs)
    cerebro.broker.setcommission(commission=0.001)
    return cerebro


# -- setup_external_notifications ----------------------------------------------------------
@pytest.mark.parametrize('methods,settings,match', [
    (['sms'], {}, "unknown notification method.* 'sms'; available: callback, email"),
    ('callback', {'email_host': 'x'}, r'unknown setting\(s\) for methods callback: email_host'),
    (['email'], {'email_to': 'a@b.c'}, 'email needs an SMTP host'),
    (['email'], {'email_host': 'h'}, 'at least one recipient'),
    (['webhook'], {'webhook_url': 'not-a-url'}, 'webhook url must be an http'),
    (['callback'], {'level': 'LOUD'}, 'unknown notification level'),
])
def test_setup_mistakes_are_clear_errors(methods, settings, match, monkeypatch):
    monkeypatch.delenv('BTL_WEBHOOK_URL', raising=False)
    with pytest.raises(ConfigError, match=match):
        btl.setup_external_notifications(btl.Cerebro(), methods, **settings)


def test_setup_builds_channels_from_settings():
    cerebro = btl.Cerebro()
    first, second = Collector(), Collector()
    added = btl.setup_external_notifications(
        cerebro, ['callback', 'webhook', 'log'], callback=first, callbacks=[second],
        webhook_urls=['https://example.com/a', 'https://example.org/b'], webhook_format='slack',
        level='WARNING', log_level='DEBUG', retries=1, timeout=3, queue_size=50,
        dedupe_interval=5, drain_timeout=2)
    assert [type(c) for c in added] == [CallbackChannel, CallbackChannel, WebhookChannel,
                                        WebhookChannel, LogChannel]
    assert [c.level for c in added] == [30, 30, 30, 30, 10]
    assert all((c.retries, c.timeout, c.queue_size) == (1, 3, 50) for c in added)
    assert cerebro.notifier.dedupe_interval == 5 and cerebro.notifier.drain_timeout == 2
    assert cerebro.notifier.channels == added
    # the legacy flow: more callbacks later, then trigger by hand
    third = Collector()
    cerebro.add_notification_callback(third, level='INFO', name='third')
    for channel in added[2:4]:
        cerebro.remove_notification_channel(channel)
    assert cerebro.trigger_notifications('manual check', 'ERROR') == 4
    assert cerebro.flush_notifications(5)
    assert first.texts() == second.texts() == third.texts() == ['manual check']
    assert cerebro.stop_notifications(2) and bt_live_threads() == []



def test_setup_with_no_methods_uses_what_the_settings_and_environment_configure(monkeypatch):
    monkeypatch.delenv('BTL_APPRISE_URLS', raising=False)
    monkeypatch.setenv('BTL_WEBHOOK_URL', 'https://example.com/hook')
    got = Collector()
    for call in (lambda c: btl.setup_external_notifications(c, callback=got),
                 lambda c: btl.setup_external_notifications(c, None, callback=got),
                 lambda c: btl.setup_external_notifications(c, notification_methods=None,
                                                            callback=got)):
        cerebro = btl.Cerebro()
        added = call(cerebro)
        assert [type(c) for c in added] == [CallbackChannel, WebhookChannel, LogChannel]
        assert cerebro.stop_notifications(2)
    monkeypatch.delenv('BTL_WEBHOOK_URL')
    cerebro = btl.Cerebro()
    assert [type(c) for c in btl.setup_external_notifications(cerebro)] == [LogChannel]
    assert cerebro.stop_notifications(2) and bt_live_threads() == []


def test_setup_takes_the_methods_by_either_name():
    cerebro = btl.Cerebro()
    got = Collector()
    (by_new,) = btl.setup_external_notifications(cerebro, notification_methods=['callback'],
                                                 callback=got)
    (by_old,) = btl.setup_external_notifications(cerebro, methods='callback', callback=got)
    assert type(by_new) is type(by_old) is CallbackChannel
    with pytest.raises(ConfigError, match='notification_methods or methods'):
        btl.setup_external_notifications(cerebro, ['log'], methods=['log'])
    with pytest.raises(ConfigError, match='must be a method name, a list of them or None'):
        btl.setup_external_notifications(cerebro, 42)
    assert cerebro.stop_notifications(2) and bt_live_threads() == []

def test_a_new_notifier_keeps_the_channels_already_added():
    cerebro = btl.Cerebro()
    got = Collector()
    cerebro.add_notification_callback(got)
    btl.setup_external_notifications(cerebro, 'callback', dedupe_interval=0)
    assert len(cerebro.notifier.channels) == 1 and cerebro.notifier.dedupe_interval == 0
    assert cerebro.trigger_notifications('a') == cerebro.trigger_notifications('a') == 1
    got.wait(2)
    cerebro.stop_notifications(2)


def test_without_channels_nothing_changes(csv_data):
    cerebro = _cerebro(csv_data)
    assert cerebro.trigger_notifications('nobody listens') == 0
    assert cerebro.flush_notifications() and cerebro.stop_notifications()
    (strategy,) = cerebro.run()
    assert len(strategy.analyzers) == 0 and not cerebro.datacbs    # a backtest as before
    assert '_btl_notifier' not in cerebro.__dict__ and bt_live_threads() == []


# -- what triggers on its own ---------------------------------------------------------------
def test_fills_and_closed_trades_of_an_unchanged_strategy(csv_data):
    cerebro = _cerebro(csv_data)
    got, everything = Collector(), Collector()
    btl.setup_external_notifications(cerebro, ['callback'], callback=got)
    cerebro.add_notification_callback(everything, level='DEBUG', name='all')
    (strategy,) = cerebro.run()
    assert bt_live_threads() == []                   # run() drained and stopped delivery
    buy, sell, trade = got.items
    assert str(buy) == 'BUY 2 TEST @ 103 completed, commission 0.206'
    assert (buy.kind, buy.levelname) == ('order', 'INFO')
    assert buy.data.pop('commission') == pytest.approx(0.206)
    assert buy.data == {'ref': buy.data['ref'], 'status': 'Completed', 'side': 'buy',
                        'symbol': 'TEST', 'type': 'Market', 'size': 2, 'price': 101.0,
                        'executed_size': 2, 'executed_price': 103.0, 'reason': None}
    assert str(sell) == 'SELL 2 TEST @ 106 completed, commission 0.212'
    assert str(trade) == 'Trade closed on TEST: PnL 6, net 5.582 after 0.418 commission'
    assert trade.kind == 'trade' and trade.data['pnlcomm'] == pytest.approx(5.582)
    # DEBUG channels also see submissions, acceptances and the opened trade
    assert [n.data.get('status') for n in everything.of_kind('order')] == [
        'Submitted', 'Accepted', 'Completed'] * 2
    assert 'Trade opened on TEST: long 2 @ 103' in everything.texts()
    assert strategy.analyzers.notifications.get_analysis() == {'order': 6, 'trade': 2,
                                                               'strategy': 0}


def test_a_rejection_storm_is_one_alert_per_interval(csv_data):
    class Greedy(backtrader.Strategy):
        def next(self):
            self.buy(size=1000)          # far more than the cash: Margin, every bar

    cerebro = _cerebro(csv_data, Greedy)
    got = Collector()
    btl.setup_external_notifications(cerebro, ['callback'], callback=got)
    cerebro.run()
    assert got.texts() == ['BUY 1000 TEST market rejected (not enough cash or margin)']
    assert got.items[0].levelname == 'WARNING'
    assert cerebro.notifier.suppressed == len(PRICES) - 2   # the others, de-duplicated


class FakeRiskAnalyzer(backtrader.Analyzer):
    """Calls Cerebro exactly as the RiskAnalyzer does (see its design notes)."""

    def next(self):
        if len(self.strategy) == 4:
            cerebro = self.strategy.env
            if hasattr(cerebro, 'trigger_notifications'):
                cerebro.trigger_notifications('drawdown 12.0% exceeds the 10.0% limit',
                                              level='WARNING', kind='risk_alert',
                                              data={'rule': 'max_drawdown', 'value': 0.12})


class Logged(btl.LiveStrategy):
    params = (('buy_at', 2), ('close_at', 6))

    def __init__(self):
        self.alerts = []

    def next(self):
        if len(self) == self.p.buy_at:
            self.buy(size=2)
        elif len(self) == self.p.close_at:
            self.close()
        elif len(self) == 8:
            self.send_simple_notification('manual note at bar 8', level='ERROR')

    def notify_risk_alert(self, message, level='WARNING', data=None):
        super().notify_risk_alert(message, level, data)
        self.alerts.append((message, level, data))


def test_live_strategy_logs_with_bar_times_and_risk_alerts_reach_everyone(csv_data, caplog):
    caplog.set_level(logging.INFO, logger='backtrader_live.strategy')
    cerebro = _cerebro(csv_data, Logged)
    cerebro.addanalyzer(FakeRiskAnalyzer)
    got = Collector()
    btl.setup_external_notifications(cerebro, ['callback'], callback=got)
    (strategy,) = cerebro.run()
    lines = [r.getMessage() for r in caplog.records if r.name.endswith('.Logged')]
    assert lines == [
        '2024-01-01 02:00:00 BUY 2 TEST @ 103 completed, commission 0.206 (order %d)'
        % strategy._orders[0].ref,
        '2024-01-01 03:00:00 risk alert: drawdown 12.0% exceeds the 10.0% limit',
        '2024-01-01 06:00:00 SELL 2 TEST @ 106 completed, commission 0.212 (order %d)'
        % strategy._orders[-1].ref,      # (_orders holds one copy per notification)
        '2024-01-01 06:00:00 Trade closed on TEST: PnL 6, net 5.582 after 0.418 commission '
        '(trade %d)' % strategy._trades[strategy.data][0][0].ref,
        '2024-01-01 07:00:00 manual note at bar 8']
    records = [r for r in caplog.records if r.name.endswith('.Logged')]
    assert records[-1].levelno == logging.ERROR and records[1].levelno == logging.WARNING
    assert records[0].bar_time.isoformat() == '2024-01-01T02:00:00'
    assert strategy.alerts == [('drawdown 12.0% exceeds the 10.0% limit', 'WARNING',
                                {'rule': 'max_drawdown', 'value': 0.12})]
    kinds = [(n.kind, n.levelname) for n in got.items]
    assert kinds == [('order', 'INFO'), ('risk_alert', 'WARNING'), ('order', 'INFO'),
                     ('trade', 'INFO'), ('strategy', 'ERROR')]
    assert got.items[1].data == {'rule': 'max_drawdown', 'value': 0.12}
    assert strategy.analyzers.notifications.get_analysis()['strategy'] == 1


def test_risk_alerts_reach_strategies_only_from_the_thread_running_them():
    calls = []

    class Spy:
        def notify_risk_alert(self, message, level, data):
            calls.append((message, level, data))

    class Plain:                      # a strategy without the hook is skipped
        pass

    cerebro = btl.Cerebro()
    cerebro.runningstrats = [Spy(), Plain()]
    cerebro._btl_run_thread = threading.get_ident()      # as if run() were going on here
    outside = threading.Thread(target=cerebro.trigger_notifications, name='test-other',
                               args=('from elsewhere',), kwargs={'kind': 'risk_alert'})
    outside.start()
    outside.join(5)
    cerebro.trigger_notifications('limit hit', level=40, kind='risk_alert', data=1)
    cerebro.trigger_notifications('odd level', level='LOUD', kind='risk_alert')
    assert calls == [('limit hit', 'ERROR', 1), ('odd level', 'WARNING', None)]


def test_a_run_that_dies_says_so(csv_data):
    class Broken(backtrader.Strategy):
        def next(self):
            if len(self) == 3:
                raise RuntimeError('division by zero in my indicator')

    cerebro = _cerebro(csv_data, Broken)
    got = Collector()
    btl.setup_external_notifications(cerebro, ['callback'], callback=got)
    with pytest.raises(RuntimeError):
        cerebro.run()
    (critical,) = got.items
    assert str(critical) == 'run stopped by RuntimeError: division by zero in my indicator'
    assert (critical.kind, critical.levelname) == ('run_error', 'CRITICAL')
    assert bt_live_threads() == []


def test_send_simple_notification_isolates_broken_analyzers(csv_data, caplog):
    class Legacy(backtrader.Analyzer):          # the original design's analyzer shape
        def __init__(self):
            self.got = []

        def add_external_notification(self, message, level):
            self.got.append((message, level))

    class Broken(backtrader.Analyzer):
        def add_external_notification(self, message, level):
            raise RuntimeError('analyzer bug')

    class Sender(btl.LiveStrategy):
        def next(self):
            if len(self) == 1:
                self.taken = self.send_simple_notification('hello', 'WARNING')

    cerebro = _cerebro(csv_data, Sender)
    cerebro.addanalyzer(Legacy, _name='legacy')
    cerebro.addanalyzer(Broken)
    (strategy,) = cerebro.run()                  # no channel: no notifications analyzer
    assert strategy.taken == 1 and strategy.analyzers.legacy.got == [('hello', 'WARNING')]
    assert 'Broken.add_external_notification failed' in caplog.text


def test_live_strategy_mixin_fits_any_strategy_and_can_be_quiet(csv_data, caplog):
    caplog.set_level(logging.DEBUG, logger='my.bot')

    class Quiet(btl.LiveStrategyMixin, BuyThenClose):
        log_orders = False
        logger_name = 'my.bot'

        def next(self):
            super().next()
            if len(self) == 1:
                self.log('first bar', level='NOPE')       # a bad level is not fatal
                self.log('explicit time', dt=self.data.datetime.datetime(0).replace(hour=5))

    cerebro = _cerebro(csv_data, Quiet)
    (strategy,) = cerebro.run()
    ref = strategy._trades[strategy.data][0][0].ref
    lines = [r.getMessage() for r in caplog.records if r.name == 'my.bot']
    assert lines == ['2024-01-01 00:00:00 first bar', '2024-01-01 05:00:00 explicit time',
                     '2024-01-01 02:00:00 Trade opened on TEST: long 2 @ 103 (trade %d)' % ref,
                     '2024-01-01 06:00:00 Trade closed on TEST: PnL 6, net 5.582 after 0.418 '
                     'commission (trade %d)' % ref]
    assert 'unknown log level' in caplog.text


def test_data_status_wording():
    assert describe_data_status('BTC/USDT', 'LIVE', 'DELAYED').message == 'BTC/USDT: data is LIVE'
    back = describe_data_status('BTC/USDT', 'LIVE', 'CONNBROKEN')
    assert back.message == 'BTC/USDT: reconnected, data is LIVE again' and back.data[
        'reconnected']
    lost = describe_data_status('BTC/USDT', 'CONNBROKEN', 'LIVE')
    assert lost.level == logging.WARNING and 'connection lost' in lost.message
    odd = describe_data_status('X', 'SOMETHING')
    assert odd.message == 'X: data status SOMETHING' and odd.level == logging.WARNING


def test_a_cerebro_with_channels_still_pickles_for_optimization():
    cerebro = btl.Cerebro()
    cerebro.add_notification_callback(print)
    cerebro.trigger_notifications('starts a thread')
    clone = pickle.loads(pickle.dumps(cerebro))
    assert '_btl_notifier' not in clone.__dict__ and clone.trigger_notifications('x') == 0
    cerebro.stop_notifications(2)


def test_the_analyzer_can_send_elsewhere(csv_data):
    sent = []
    cerebro = _cerebro(csv_data)
    cerebro.addanalyzer(NotificationAnalyzer, trigger=lambda *args, **kw: sent.append(args))
    cerebro.run()
    completed = [a for a in sent if a[2] == 'order' and a[3]['status'] == 'Completed']
    assert [a[0] for a in completed] == ['BUY 2 TEST @ 103 completed, commission 0.206',
                                         'SELL 2 TEST @ 106 completed, commission 0.212']
    assert len(sent) == 8              # 6 order events, trade opened and trade closed


def test_an_analyzer_added_by_hand_is_not_doubled(csv_data):
    cerebro = _cerebro(csv_data)
    cerebro.addanalyzer(NotificationAnalyzer, _name='mine')      # no trigger: Cerebro's
    got = Collector()
    cerebro.add_notification_callback(got)
    (strategy,) = cerebro.run()
    assert len(strategy.analyzers) == 1
    assert [n.data['status'] for n in got.of_kind('order')] == ['Completed', 'Completed']
    assert strategy.analyzers.mine.get_analysis()['order'] == 6


def test_a_replaced_notifier_is_stopped():
    cerebro = btl.Cerebro()
    got = Collector()
    old = cerebro.notifier
    old.add_channel(got)
    old.notify('queued on the old one')
    new = cerebro.set_notifier(btl.notifications.Notifier())
    assert cerebro.notifier is new and bt_live_threads() == []
    assert got.texts() == ['queued on the old one']           # drained, not lost


def test_a_run_interrupted_without_a_message_reads_well(csv_data):
    class Interrupted(backtrader.Strategy):
        def next(self):
            raise KeyboardInterrupt

    cerebro = _cerebro(csv_data, Interrupted)
    got = Collector()
    cerebro.add_notification_callback(got, level='CRITICAL')
    with pytest.raises(KeyboardInterrupt):
        cerebro.run()
    assert got.texts() == ['run stopped by KeyboardInterrupt']


def _fake_order(status, executed=0.0, price=None, reason=None, size=0.05):
    """The attributes describe_order reads, for states a backtest cannot reach."""
    from types import SimpleNamespace
    return SimpleNamespace(
        ref=9, getstatusname=lambda: status, isbuy=lambda: False, getordername=lambda: 'Limit',
        data=SimpleNamespace(_name='', p=SimpleNamespace(dataname='ETH/BTC')),
        created=SimpleNamespace(size=-size, price=0.07),
        executed=SimpleNamespace(size=-executed, price=price or 0.0, comm=0.0),
        info={'reject_reason': reason})


@pytest.mark.parametrize('order,text,level', [
    (_fake_order('Canceled', 0.02, 0.0712), 'SELL 0.05 ETH/BTC limit canceled after filling '
     '0.02 @ 0.0712', logging.INFO),
    (_fake_order('Expired'), 'SELL 0.05 ETH/BTC limit expired', logging.INFO),
    (_fake_order('Rejected', reason='LOT_SIZE'), 'SELL 0.05 ETH/BTC limit rejected: LOT_SIZE',
     logging.WARNING),
    (_fake_order('Frozen'), 'SELL 0.05 ETH/BTC limit frozen', logging.INFO),
])
def test_order_wording_for_every_status(order, text, level):
    from backtrader_live.notifications import describe_order
    event = describe_order(order)
    assert (event.message, event.level) == (text, level)
    assert event.data['symbol'] == 'ETH/BTC' and event.data['side'] == 'sell'


def test_number_and_name_helpers():
    from backtrader_live.notifications.formatting import data_name, describe_trade, num
    from types import SimpleNamespace
    assert (num(None), num(0.1 + 0.2), num(42000.0), num(1e-9)) == ('-', '0.3', '42000', '1e-09')
    assert data_name(None) == '?'
    updated = SimpleNamespace(isclosed=False, justopened=False,
                              data=SimpleNamespace(_name='X'))
    assert describe_trade(updated) is None            # an increase: not worth a message
