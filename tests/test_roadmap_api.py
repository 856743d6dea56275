"""The roadmap's public calls, made exactly as the roadmap writes them (names,
parameters, return types, defaults): one test each, so the contract cannot
drift again. Where we offer more, the richer form is asserted next to it."""
import os

import backtrader
import pytest

import backtrader_live as bt
from backtrader_live.stores import BinanceStore
from helpers import KEY, SECRET
from livekit import LiveRun, local_store_kwargs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_store_get_balance_of_a_currency_is_a_float_and_without_one_a_dict(sim):
    store = BinanceStore.get_instance(KEY, SECRET, True, 'spot', endpoint=sim.base_url)
    free = store.get_balance('USDT')
    assert isinstance(free, float) and free == 10000.0
    balances = store.get_balance()
    assert isinstance(balances, dict) and balances['USDT']['free'] == 10000.0


def test_store_test_connection_returns_a_bool(sim):
    from notifykit import refused_port
    assert BinanceStore.get_instance(KEY, SECRET, True, 'spot',
                                     endpoint=sim.base_url).test_connection() is True
    gone = BinanceStore.get_instance(KEY, SECRET, True, 'spot', rest_retries=0,
                                     endpoint='http://127.0.0.1:%d' % refused_port())
    assert gone.test_connection() is False


def test_store_get_instance_is_one_store_per_configuration(sim):
    first = BinanceStore.get_instance(KEY, SECRET, True, 'spot', endpoint=sim.base_url)
    assert BinanceStore.get_instance(KEY, SECRET, True, 'spot', endpoint=sim.base_url) is first
    other = BinanceStore.get_instance(KEY, SECRET, True, 'spot', endpoint=sim.base_url,
                                      timeout=3.0)
    assert other is not first and other.p.timeout == 3.0


def test_binance_store_defaults_recv_window_5000_and_rate_limit_on():
    assert BinanceStore.params.recv_window == 5000
    assert BinanceStore.params.rate_limit is True


def test_run_live_kwargs_configure_store_broker_and_data(sim):
    run = LiveRun(sim, max_bars=1, recv_window=4000, rate_limit=False, fill_wait=1.0,
                  queue_size=500)
    run.start().step(1)
    run.join()
    strategy = run.rec.strategy
    assert strategy.broker.store.p.recv_window == 4000
    assert strategy.broker.store.p.rate_limit is False
    assert strategy.broker.p.fill_wait == 1.0 and strategy.data.p.queue_size == 500
    with pytest.raises(bt.ConfigError, match="did you mean 'recv_window'"):
        bt.Cerebro().run_live('binance', 'BTC/USDT', '1h', bt.Strategy, recv_windw=5000)


def test_database_timeframe_map_and_from_timeframe_string():
    from backtrader_live.feed import DataBase
    assert DataBase.TIMEFRAME_MAP['1m'] == '1min' and DataBase.TIMEFRAME_MAP['1w'] == '1week'
    data = bt.feeds.BinanceData.from_timeframe_string(timeframe_str='4h', store=None,
                                                      symbol='BTC/USDT')
    assert (data.p.timeframe, data.p.compression) == (backtrader.TimeFrame.Minutes, 240)
    assert DataBase.TIMEFRAME_SPECS['1h'][1] == 60       # the tuples, under another name


def test_risk_analyzer_get_analysis_has_metrics_alerts_and_normal_or_warning():
    from test_risk_analyzer import DD_ONLY, DIP
    from test_risk_kit import Script, buy, cerebro
    c = cerebro(DIP, commission=0.0)
    c.addstrategy(Script, script={2: buy(90)})
    c.addanalyzer(bt.analyzers.RiskAnalyzer, **DD_ONLY)
    analysis = c.run()[0].analyzers.risk.get_analysis()
    assert set(analysis) >= {'risk_metrics', 'risk_alerts', 'current_status'}
    assert analysis['current_status'] == 'warning' and analysis['risk_alerts']
    quiet = cerebro(DIP[:6], commission=0.0)
    quiet.addstrategy(Script, script={})
    quiet.addanalyzer(bt.analyzers.RiskAnalyzer, **DD_ONLY)
    assert quiet.run()[0].analyzers.risk.get_analysis()['current_status'] == 'normal'


def test_setup_external_notifications_with_the_default_methods():
    cerebro = bt.Cerebro()
    added = bt.setup_external_notifications(cerebro, notification_methods=None)
    assert added and all(c.name for c in added)
    assert bt.setup_external_notifications(bt.Cerebro())
    assert cerebro.stop_notifications(2)


def test_the_kill_switch_works_in_a_backtest_with_the_default_cerebro():
    cerebro = bt.Cerebro()
    assert hasattr(cerebro.broker, 'kill_switch')
    assert hasattr(cerebro.broker, 'check_risk_limits')


def test_the_test_command_enforces_90_percent_coverage():
    with open(os.path.join(ROOT, 'README.md')) as f:
        readme = f.read()
    assert 'python -m pip install -e ".[test]" && python -m pytest --cov' in readme
    with open(os.path.join(ROOT, '.ci', 'run')) as f:
        assert 'python -m pytest --cov' in f.read()
    with open(os.path.join(ROOT, 'pyproject.toml')) as f:
        assert 'fail_under = 90' in f.read()


def test_run_live_keeps_memory_flat_at_its_defaults():
    """The figure is the memory benchmark's; here, that the default bounds lines."""
    assert bt.Cerebro.run_live.__kwdefaults__['keep_bars'] == 20000


def test_broker_check_risk_limits_returns_true_when_allowed_and_false_with_the_reason():
    from test_risk_kit import Rows  # noqa: F401  (the feed module used below)
    cerebro = bt.Cerebro()
    broker = cerebro.broker
    broker.setcash(10000.0)
    broker.p.max_order_notional = 1000.0

    class Probe(backtrader.Strategy):
        def next(self):
            small = backtrader.BuyOrder(owner=self, data=self.data, size=1, price=None,
                                        exectype=backtrader.Order.Market)
            small.created.pclose = self.data.close[0]
            big = backtrader.BuyOrder(owner=self, data=self.data, size=100, price=None,
                                      exectype=backtrader.Order.Market)
            big.created.pclose = self.data.close[0]
            self.verdicts = (broker.check_risk_limits(small), broker.last_risk_reason,
                             broker.check_risk_limits(big), broker.last_risk_reason)
            self.env.runstop()
    from test_risk_analyzer import DIP
    from test_risk_kit import feed
    cerebro.adddata(feed(DIP))
    cerebro.addstrategy(Probe)
    allowed, no_reason, refused, reason = cerebro.run()[0].verdicts
    assert allowed is True and no_reason is None
    assert refused is False and 'max_order_notional' in reason


def test_broker_submit_order_goes_through_the_paper_and_live_hooks(sim):
    calls = []

    class Paper(bt.BrokerBase):
        def _submit_paper_order(self, order, check=True):
            calls.append(('paper', order.size))
            return super()._submit_paper_order(order, check)

    from test_risk_analyzer import DIP
    from test_risk_kit import Script, buy, feed
    cerebro = bt.Cerebro()
    cerebro.setbroker(Paper(cash=10000.0))
    cerebro.adddata(feed(DIP))
    cerebro.addstrategy(Script, script={2: buy(1)})
    strat = cerebro.run()[0]
    assert calls == [('paper', 1)] and strat.statuses('Completed')

    class Live(bt.brokers.BinanceBroker):
        def _submit_live_order(self, order):
            calls.append(('live', order.size))
            return super()._submit_live_order(order)

    # the instance LiveRun's run_live gets (same arguments)
    store = BinanceStore.get_instance(KEY, SECRET, True, 'spot', endpoint=sim.base_url,
                                      **local_store_kwargs())
    store.BrokerCls, original = Live, store.BrokerCls
    try:
        run = LiveRun(sim, max_bars=2, script={6: lambda s: s.buy(size=0.01)})
        run.start().step(2)
        run.join()
    finally:
        store.BrokerCls = original
    assert calls[-1] == ('live', 0.01)
    assert 'Completed' in run.rec.statuses()


def test_database_load_historical_and_live_data_are_the_feeds_override_points(sim, monkeypatch):
    calls = {'history': 0, 'live': 0}

    class Counting(bt.feeds.BinanceData):
        def _load_historical_data(self):
            calls['history'] += 1
            return super()._load_historical_data()

        def _load_live_data(self):
            calls['live'] += 1
            return super()._load_live_data()

    monkeypatch.setattr(BinanceStore, 'DataCls', Counting)
    run = LiveRun(sim, backfill_bars=5, max_bars=2)
    run.start().step(2)
    run.join()
    assert calls['history'] == 1 and calls['live'] >= 2
    assert isinstance(run.rec.strategy.data, Counting) and len(run.rec.bars) == 5 + 2
