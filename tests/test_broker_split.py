"""Issue 13, the broker half: a PaperBroker and a LiveBroker over one risk
gate, chosen by ``paper_trading`` when the broker is made (broker.py)."""
import pickle

import backtrader
import pytest

import backtrader_live as btl
from backtrader_live.brokers import LiveBroker, PaperBroker
from backtrader_live.stores import BinanceStore, BybitStore
from test_risk_kit import Script, buy, cerebro, synthetic_rows
from venues import ALL, VENUES, live_run, sim_orders, unit, venue_sim

STORES = {'binance': BinanceStore, 'bybit': BybitStore}


class Mine(btl.brokers.BybitBroker):
    """A user's broker: its own default and hook (module level: picklable)."""
    params = (('fill_wait', 0.5),)

    def _submit_paper_order(self, order, check=True):
        order.addinfo(mine=True)
        return super()._submit_paper_order(order, check)


@pytest.mark.parametrize('paper', [True, False], ids=['paper', 'live'])
@pytest.mark.parametrize('venue', ALL)
def test_getbroker_makes_the_paper_or_the_live_broker_on_every_venue(venue, paper):
    u = unit(venue)
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, paper_trading=paper, max_bars=2,
                       script={6: lambda s: s.buy(size=u)}).start()
        run.step(2)
        run.join()
        sent = [o for o in sim_orders(sim, venue) if o.client_id.startswith('btl')]
    broker = run.rec.strategy.broker
    mode, other = (PaperBroker, LiveBroker) if paper else (LiveBroker, PaperBroker)
    assert isinstance(broker, mode) and not isinstance(broker, other)
    # still the venue's exchange broker, under its own name
    assert isinstance(broker, STORES[VENUES[venue][0]].BrokerCls)
    assert type(broker).__name__ == STORES[VENUES[venue][0]].BrokerCls.__name__
    assert broker.p.paper_trading is paper and broker.live is not paper
    assert run.rec.statuses()[-1] == 'Completed'
    assert len(sent) == (0 if paper else 1)      # paper: nothing left this machine
    # the feed learnt its broker as it started (no detour through the store)
    assert run.rec.strategy.data._broker is broker


def test_a_store_getbroker_is_paper_by_default(sim):
    store = BinanceStore.get_instance(endpoint=sim.base_url)
    assert isinstance(store.getbroker(), PaperBroker)
    assert isinstance(store.getbroker(paper_trading=False), LiveBroker)


def test_a_subclass_keeps_its_name_defaults_and_hooks_in_both_modes():
    paper, live = Mine(), Mine(paper_trading=False)
    assert isinstance(paper, PaperBroker) and isinstance(live, LiveBroker)
    assert isinstance(paper, Mine) and isinstance(live, Mine)
    assert type(paper).__name__ == type(live).__name__ == 'Mine'
    assert type(Mine()) is type(paper)      # made once per mode
    assert paper.p.fill_wait == live.p.fill_wait == 0.5
    assert (paper.p.paper_trading, live.p.paper_trading) == (True, False)
    assert 'Mine(paper_trading=False' in repr(live)


def test_a_made_broker_survives_pickling_and_trades_as_before():
    """Optimisation (maxcpus > 1) pickles Cerebro with its broker."""
    copy = pickle.loads(pickle.dumps(Mine(cash=5000.0)))
    assert type(copy) is type(Mine()) and copy.p.fill_wait == 0.5
    c = cerebro(synthetic_rows([100.0] * 6), broker=copy)
    c.addstrategy(Script, script={2: buy(1)})
    strat = c.run()[0]
    assert strat.statuses('Completed') and strat.broker.getposition(strat.data).size == 1
    assert strat._orders[-1].info.get('mine') is True       # the subclass's hook ran


def test_a_live_broker_copy_gets_its_own_event_queue():
    live = Mine(paper_trading=False)
    copy = pickle.loads(pickle.dumps(live))
    assert isinstance(copy, LiveBroker) and copy.p.fill_wait == 0.5
    assert copy._events is not live._events and copy._events.qsize() == 0


def test_the_mode_is_decided_once_and_contradictions_are_refused():
    with pytest.raises(btl.ConfigError, match='LiveBroker is the live broker: '
                                              'paper_trading=True contradicts it'):
        LiveBroker(paper_trading=True)
    with pytest.raises(btl.ConfigError, match=r"paper_trading must be True .* or False .*"
                                              r"got 'no'"):
        btl.BrokerBase(paper_trading='no')
    assert isinstance(PaperBroker(), PaperBroker) and isinstance(btl.BrokerBase(), PaperBroker)
    assert isinstance(btl.BrokerBase(paper_trading=False), LiveBroker)


def test_both_modes_share_one_gate():
    paper, live = btl.BrokerBase(), btl.BrokerBase(paper_trading=False)
    for broker in (paper, live):
        assert type(broker).check_risk_limits is btl.BrokerBase.check_risk_limits
        assert type(broker).submit_order is btl.BrokerBase.submit_order
    # the live gate also refuses what the exchange cannot place; paper fills all
    assert [r.__name__ for r in live.risk_rules][:2] == ['_rule_supported',
                                                         '_rule_market_minimums']
    assert [r.__name__ for r in paper.risk_rules][0] == '_rule_market_minimums'


def test_a_live_broker_without_a_store_fails_clearly_at_start():
    broker = btl.brokers.BinanceBroker(paper_trading=False)
    with pytest.raises(btl.FatalError, match=r'needs a store.*getbroker\(paper_trading=False\)'):
        broker.start()


def test_a_backtest_broker_is_upstreams_on_the_per_bar_calls():
    """The backtest fast path: nothing of ours between upstream and the
    calls it makes every bar (issue 12, <= 2 %)."""
    broker = btl.Cerebro().broker
    for name in ('next', 'getcash', 'getvalue', 'cancel', 'get_orders_open'):
        assert getattr(type(broker), name) is getattr(backtrader.brokers.BackBroker, name), name
