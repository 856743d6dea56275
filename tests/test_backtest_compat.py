"""Existing strategies stay 100% compatible: a classic backtest over the real
BTC/USDT 1h data gives identical trades and value with either Cerebro."""
import backtrader
import pytest

import backtrader_live
from helpers import load_rows
from test_risk_kit import Rows


class SmaCross(backtrader.Strategy):
    params = (('fast', 10), ('slow', 30))

    def __init__(self):
        self.cross = backtrader.ind.CrossOver(backtrader.ind.SMA(period=self.p.fast),
                                              backtrader.ind.SMA(period=self.p.slow))
        self.log = []

    def notify_trade(self, trade):
        if trade.isclosed:
            self.log.append((trade.dtopen, trade.dtclose, trade.pnl, trade.pnlcomm))

    def next(self):
        if not self.position and self.cross > 0:
            self.buy()
        elif self.position and self.cross < 0:
            self.close()


def _run(module, rows):
    cerebro = module.Cerebro()
    cerebro.adddata(Rows(rows=rows, timeframe=backtrader.TimeFrame.Minutes,
                                compression=60))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(100000.0)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.addsizer(module.sizers.PercentSizer, percents=90)
    cerebro.addanalyzer(module.analyzers.TradeAnalyzer, _name='ta')
    cerebro.addanalyzer(module.analyzers.DrawDown, _name='dd')
    strat = cerebro.run()[0]
    return (strat.log, cerebro.broker.getvalue(), strat.analyzers.dd.get_analysis().max.drawdown,
            strat.analyzers.ta.get_analysis().total.closed)


@pytest.fixture(scope='module')
def rows():
    return load_rows()


# CPU-bound: two backtests of 34,000 bars, ~30 s under coverage alone; beside
# three other workers on two cores it passed the 120 s timeout.
@pytest.mark.serial
def test_identical_trades_and_value(rows):
    theirs = _run(backtrader, rows)
    ours = _run(backtrader_live, rows)
    assert len(theirs[0]) > 300            # a real strategy with many trades
    assert ours == theirs


def test_the_default_broker_carries_the_risk_gate():
    """backtrader_live.Cerebro() enforces risk limits in a backtest with no
    broker set by hand: RiskAnalyzer(enforce=True) trips a real kill switch."""
    from test_risk_analyzer import DD_ONLY, DIP
    from test_risk_kit import Script, buy, feed

    cerebro = backtrader_live.Cerebro()
    assert isinstance(cerebro.broker, backtrader_live.BrokerBase)
    assert cerebro.broker.p.history_kept is None     # backtests keep upstream's history
    cerebro.adddata(feed(DIP))
    cerebro.broker.setcash(10000.0)
    cerebro.addstrategy(Script, script={2: buy(90), 16: buy(1)})
    cerebro.addanalyzer(backtrader_live.analyzers.RiskAnalyzer, **DD_ONLY)
    strat = cerebro.run()[0]
    assert strat.analyzers.risk.get_analysis()['status_details']['enforcing'] is True
    rejected = [e for e in strat.events if e[1] == 'Rejected']
    assert [(bar, size) for bar, _, size, _ in rejected] == [(16, 1)]
    assert rejected[0][3].startswith('kill switch active (drawdown')


def test_upstream_cerebro_keeps_its_broker_in_broker_attribute():
    """Guard: backtrader_live.Cerebro sets its default broker by replacing
    upstream's ``_broker`` after ``Cerebro.__init__`` (backtrader 1.9.78.123)."""
    assert backtrader.__version__ == '1.9.78.123'
    upstream = backtrader.Cerebro()
    assert isinstance(upstream._broker, backtrader.brokers.BackBroker)
    assert upstream.getbroker() is upstream._broker


def test_optimization_in_worker_processes_works_with_the_gate_broker(rows):
    """Optimization pickles Cerebro and its broker for each worker process."""
    cerebro = backtrader_live.Cerebro(maxcpus=2, optreturn=True)
    cerebro.adddata(Rows(rows=rows[:1500], timeframe=backtrader.TimeFrame.Minutes,
                         compression=60))
    cerebro.optstrategy(SmaCross, fast=[5, 10])
    cerebro.broker.setcash(100000.0)
    cerebro.addanalyzer(backtrader_live.analyzers.TradeAnalyzer, _name='ta')
    results = cerebro.run()
    assert [r[0].params.fast for r in results] == [5, 10]
    assert all(r[0].analyzers.ta.get_analysis().total.total > 5 for r in results)
