"""run_live's keyword arguments reach the component that owns them, or are
refused by name with the closest valid option: nothing is silently ignored."""
import backtrader
import pytest

import backtrader_live as btl
from helpers import KEY, SECRET
from livekit import LiveRun, Scripted


class Fast(Scripted):
    params = (('fast', 10),)


def _refused(match, **kwargs):
    with pytest.raises(btl.ConfigError, match=match):
        btl.Cerebro().run_live('binance', 'BTC/USDT', '1h', Fast, **kwargs)


def test_flat_options_reach_store_broker_data_strategy_and_run(sim):
    run = LiveRun(sim, strategy=Fast, max_bars=1, recv_window=3000, rate_limit=False,
                  rest_poll_interval=7.5, queue_size=321, fast=4, stdstats=False)
    run.start().step(1)
    run.join()
    strategy = run.rec.strategy
    store = strategy.broker.store
    assert (store.p.recv_window, store.p.rate_limit) == (3000, False)
    assert store.exchange.options['recvWindow'] == 3000
    assert strategy.broker.p.rest_poll_interval == 7.5
    assert strategy.data.p.queue_size == 321
    assert strategy.p.fast == 4
    assert run.cerebro.p.stdstats is False and not strategy.observers


def test_explicit_dictionaries_still_work_and_merge_with_flat_ones(sim):
    run = LiveRun(sim, strategy=Fast, max_bars=1, store_kwargs={'timeout': 7.0},
                  recv_window=2500, run_kwargs={'stdstats': False},
                  broker_kwargs={'fill_wait': 1.5}, data_kwargs={'qcheck': 0.25})
    run.start().step(1)
    run.join()
    strategy = run.rec.strategy
    assert (strategy.broker.store.p.timeout, strategy.broker.store.p.recv_window) == (7.0, 2500)
    assert strategy.broker.p.fill_wait == 1.5 and strategy.data.p.qcheck == 0.25
    assert run.cerebro.p.stdstats is False


@pytest.mark.parametrize('kwargs,match', [
    ({'recv_windw': 5000}, r"unknown option 'recv_windw' \(did you mean 'recv_window'\?\); "
                           r"valid options: store: .*recv_window.*; broker: .*leverage"),
    ({'levrage': 3}, r"did you mean 'leverage'"),
    ({'exactbar': 1}, r"did you mean 'exactbars'"),
    ({'broker_kwargs': {'levrage': 3}},
     r"broker_kwargs: unknown option 'levrage' \(did you mean 'leverage'\?\); valid options "
     r"of BinanceBroker:"),
    ({'store_kwargs': {'timeot': 3}}, r"store_kwargs: unknown option 'timeot' \(did you mean "
                                      r"'timeout'\?\)"),
    ({'data_kwargs': {'qcheckk': 1}}, r"data_kwargs: unknown option 'qcheckk'"),
    ({'strategy_params': {'fsat': 3}}, r"strategy_params: unknown option 'fsat' \(did you "
                                       r"mean 'fast'\?\)"),
    ({'run_kwargs': {'stdstat': False}}, r"run_kwargs: unknown option 'stdstat'"),
    ({'live': False}, r"'live' is an option of the data and the run: pass it in "
                      r"data_kwargs=\{'live': ...\} or run_kwargs=\{'live': ...\}"),
    ({'recv_window': 1, 'store_kwargs': {'recv_window': 2}},
     r"'recv_window' given twice, as a keyword argument and in store_kwargs"),
    ({'broker_kwargs': {'paper_trading': False}},
     r"broker_kwargs: 'paper_trading' is set by run_live itself"),
    ({'data_kwargs': {'backfill_bars': 3}}, r"data_kwargs: 'backfill_bars' is set by run_live"),
])
def test_unknown_misspelt_or_ambiguous_options_are_refused_before_anything_starts(kwargs, match):
    _refused(match, **kwargs)


def test_a_strategy_taking_its_own_keywords_gets_them():
    from backtrader_live.options import init_names, takes_any_keyword

    class Own(backtrader.Strategy):
        def __init__(self, threshold=1.0, **extra):
            self.threshold, self.extra = threshold, extra
    assert init_names(Own) == ('threshold',) and takes_any_keyword(Own)
    # backtrader's own __init__ swallows **kwargs: not a reason to accept any name
    assert not takes_any_keyword(backtrader.Strategy) and not takes_any_keyword(Fast)
    cerebro = btl.Cerebro()
    parts = cerebro._route_options(btl.stores.BinanceStore, Own, {'threshold': 2.0},
                                   dict(strategy={'anything': 1}, store=None, broker=None,
                                        data=None, run=None))
    assert parts['strategy'] == {'threshold': 2.0, 'anything': 1}


def test_tz_goes_to_cerebro_run_for_every_data():
    cerebro = btl.Cerebro()
    parts = cerebro._route_options(btl.stores.BinanceStore, Fast, {'tz': 'UTC'},
                                   dict(strategy=None, store=None, broker=None, data=None,
                                        run=None))
    assert parts['run'] == {'tz': 'UTC'} and parts['data'] == {}


def test_keys_and_secrets_are_named_but_never_echoed():
    with pytest.raises(btl.ConfigError) as err:
        btl.Cerebro().run_live('binance', 'BTC/USDT', '1h', Fast, apikey=KEY, secret=SECRET,
                               secrett='x')
    assert "did you mean 'secret'" in str(err.value) and SECRET not in str(err.value)
