"""Backfill paging over real gaps, the store singleton, and store queries."""
import threading

import pytest

import backtrader_live as btl
from helpers import KEY, SECRET, load_rows
from backtrader_live.stores import BinanceStore


def _file_rows():
    return load_rows()


class Collect(btl.Strategy):
    params = (('out', None),)

    def next(self):
        d = self.data
        self.p.out.append((d.datetime.datetime(0), d.open[0], d.high[0], d.low[0], d.close[0]))


def _history_run(sim, **data_kwargs):
    store = BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url)
    data = store.getdata(dataname='BTC/USDT', tf='1h', live=False, **data_kwargs)
    out = []
    cerebro = btl.Cerebro(stdstats=False)
    cerebro.adddata(data)
    cerebro.addstrategy(Collect, out=out)
    cerebro.run()
    store.stop()
    return out, data


@pytest.mark.parametrize('page', [1000, 97])
def test_backfill_pages_across_real_gaps_without_dup_or_loss(make_sim, page, monkeypatch):
    # start_index 2600: history rows 100..2599 hold the real 8-hour outage at 492.
    sim = make_sim(start_index=2600)
    monkeypatch.setattr(BinanceStore, 'OHLCV_PAGE_LIMIT', page)
    out, data = _history_run(sim, backfill_bars=2500)
    rows = _file_rows()[100:2600]
    assert len(out) == 2500
    assert [b[4] for b in out] == [r[4] for r in rows]
    assert [b[1] for b in out] == [r[1] for r in rows]
    # The gaps are the real ones: the same spacing as the source file.
    steps = [(out[i][0] - out[i - 1][0]).total_seconds() * 1000 for i in range(1, len(out))]
    assert steps == [rows[i][0] - rows[i - 1][0] for i in range(1, len(rows))]
    assert max(steps) == 8 * 3600 * 1000     # 7 bars missing in 2017-09
    assert data.p.timeframe == btl.TimeFrame.Minutes and data.p.compression == 60


def test_fromdate_pages_forward_to_the_present(make_sim, monkeypatch):
    sim = make_sim(start_index=700)
    monkeypatch.setattr(BinanceStore, 'OHLCV_PAGE_LIMIT', 128)
    probe, _ = _history_run(sim, backfill_bars=650)
    out, _ = _history_run(sim, fromdate=probe[0][0])
    assert out == probe                        # 50..699 both ways, forming bar excluded


def test_singleton_per_arguments_under_threads(sim):
    barrier = threading.Barrier(8)
    got = []

    def worker():
        barrier.wait()
        got.append(BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url))
    threads = [threading.Thread(target=worker, name='test-singleton') for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 8 and all(s is got[0] for s in got)
    others = {
        BinanceStore.get_instance(apikey=KEY, secret='other', endpoint=sim.base_url),
        BinanceStore.get_instance(apikey=KEY, secret=SECRET, testnet=False, endpoint=sim.base_url),
        BinanceStore.get_instance(apikey=KEY, secret=SECRET),
        BinanceStore.get_instance(apikey='k2', secret=SECRET, endpoint=sim.base_url),
        # another option is another configuration: never the old store
        BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url, timeout=3),
        BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url,
                                  recv_window=2000),
        BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url,
                                  rate_limit=False),
    }
    assert len(others) == 7 and got[0] not in others
    same = BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url,
                                     timeout=3)
    assert same in others and same.p.timeout == 3
    # The plain constructor is not backtrader's one-per-class singleton.
    assert BinanceStore(endpoint=sim.base_url) is not BinanceStore(endpoint=sim.base_url)


def test_store_queries(sim):
    store = BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url)
    assert store.test_connection() is True and store.is_connected
    assert store.connection_error is None and store.p.recv_window == 5000
    assert store.exchange.options['recvWindow'] == 5000
    markets = store.get_markets()
    assert {'BTC/USDT', 'ETH/BTC'} <= set(markets)
    rules = store.market_rules('BTC/USDT')
    assert (rules.base, rules.quote) == ('BTC', 'USDT')
    assert rules.amount_step == 0.00001 and rules.price_tick == 0.01
    assert rules.min_notional == 5.0 and rules.taker_fee == 0.001
    assert 'BTC/USDT' in repr(rules)
    balances = store.get_balance()
    assert balances['USDT']['free'] == 10000.0
    with pytest.raises(btl.ConfigError, match="unknown symbol 'DOGE/EUR'"):
        store.market_rules('DOGE/EUR')
    sim.set_balance('BTC', 0.5)
    assert store.get_positions() == [{'symbol': 'BTC/USDT', 'side': 'long', 'size': 0.5,
                                      'asset': 'BTC'}]
    assert store.get_positions(symbols=['ETH/BTC']) == []
    raw = store.create_order('BTC/USDT', 'limit', 'buy', 0.01, 1000.0,
                             {'clientOrderId': 'test-cid-1'})
    assert raw['clientOrderId'] == 'test-cid-1'
    assert [o['clientOrderId'] for o in store.get_open_orders('BTC/USDT')] == ['test-cid-1']
    assert [o['clientOrderId'] for o in store.get_open_orders()] == ['test-cid-1']
    assert store.fetch_order_by_client_id('test-cid-1', 'BTC/USDT')['status'] == 'open'
    assert store.fetch_order_by_client_id('no-such-id', 'BTC/USDT') is None
    store.cancel_order(None, 'BTC/USDT', store.client_id_query('test-cid-1'))
    assert store.get_open_orders('BTC/USDT') == []


def test_clock_skew_is_corrected_once(sim, monkeypatch):
    store = BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url)
    # Our clock 30 s behind the server: Binance answers -1021 (InvalidNonce);
    # the store syncs with the server time and the retry succeeds.
    real_ms = store.exchange.milliseconds
    monkeypatch.setattr(store.exchange, 'milliseconds', lambda: real_ms() - 30_000)
    assert store.get_balance('USDT') == 10000.0
    assert store.exchange.options['timeDifference'] == pytest.approx(-30_000, abs=2_000)


def test_retryable_reads_are_retried_with_backoff(sim, monkeypatch):
    import ccxt
    store = BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url)
    monkeypatch.setattr(store._backoff, 'base', 0.001)
    monkeypatch.setattr(store._backoff, 'cap', 0.002)
    failures = [ccxt.NetworkError('reset'), ccxt.ExchangeNotAvailable('503')]
    original = store.exchange.fetch_time

    def flaky():
        if failures:
            raise failures.pop(0)
        return original()
    monkeypatch.setattr(store.exchange, 'fetch_time', flaky)
    assert store.call('fetch_time') > 0
    failures.extend([ccxt.NetworkError('down')] * 5)
    with pytest.raises(btl.RetryableError):
        store.call('fetch_time')
    assert not store._connected


def test_a_create_is_never_retried(sim, monkeypatch):
    import ccxt
    store = BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url)
    calls = []

    def timeout(*args, **kwargs):
        calls.append(args)
        raise ccxt.RequestTimeout('timed out')
    monkeypatch.setattr(store.exchange, 'create_order', timeout)
    with pytest.raises(btl.errors.UnknownOutcome):
        store.create_order('BTC/USDT', 'market', 'buy', 0.01)
    assert len(calls) == 1


def test_proxy_explicit_or_from_the_environment(monkeypatch):
    monkeypatch.setenv('HTTPS_PROXY', 'http://proxy.example:3128')
    store = BinanceStore(testnet=True)
    assert store.exchange.httpsProxy == 'http://proxy.example:3128'
    assert store.ws_proxy_kwargs() == {'http_proxy_host': 'proxy.example',
                                       'http_proxy_port': 3128, 'proxy_type': 'http'}
    explicit = BinanceStore(testnet=True, proxy='http://other:8080')
    assert explicit.exchange.httpsProxy == 'http://other:8080'
    local = BinanceStore(endpoint='http://127.0.0.1:1')     # loopback never via a proxy
    assert local.exchange.httpsProxy is None and local.ws_proxy_kwargs() == {}
    # The real testnet URLs are ccxt's sandbox ones, and the stream URLs ours.
    assert 'testnet.binance.vision' in store.exchange.urls['api']['public']
    assert store.market_ws_url() == 'wss://stream.testnet.binance.vision/stream'
    assert store.user_ws_url() == 'wss://ws-api.testnet.binance.vision/ws-api/v3'
    main = BinanceStore(testnet=False)
    assert main.market_ws_url() == 'wss://stream.binance.com:9443/stream'
    assert 'api.binance.com' in main.exchange.urls['api']['public']


def test_user_stream_needs_keys(sim):
    store = BinanceStore.get_instance(endpoint=sim.base_url)
    with pytest.raises(btl.FatalError, match='needs an API key'):
        store.subscribe_user(lambda event: None)


def test_user_stream_refusal_is_reported(sim):
    store = BinanceStore.get_instance(apikey=KEY, secret='bad-secret', endpoint=sim.base_url)
    events = []
    store.subscribe_user(events.append)
    from helpers import eventually
    eventually(lambda: any(isinstance(e, tuple) and e[0] == 'error' for e in events))
    error = [e for e in events if e[0] == 'error'][0][1]
    assert 'refused' in error and '-1022' in error and 'bad-secret' not in error
    store.stop()


def test_test_connection_is_false_with_the_reason_when_unreachable_or_refused(sim):
    from notifykit import refused_port
    gone = BinanceStore.get_instance(apikey=KEY, secret=SECRET, rest_retries=0,
                                     endpoint='http://127.0.0.1:%d' % refused_port())
    assert gone.test_connection() is False and not gone.is_connected
    assert gone.connection_error
    refused = BinanceStore.get_instance(apikey=KEY, secret='bad-secret', endpoint=sim.base_url)
    assert refused.test_connection() is False
    assert '-1022' in refused.connection_error and 'bad-secret' not in refused.connection_error
    assert BinanceStore.get_instance(apikey=KEY, secret=SECRET,
                                     endpoint=sim.base_url).test_connection() is True


def test_get_balance_of_a_currency_is_its_free_balance(sim):
    store = BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url)
    assert store.get_balance('USDT') == 10000.0 and isinstance(store.get_balance('USDT'), float)
    assert store.get_balance('DOGE') == 0.0
    assert store.get_balance_details('USDT') == {'free': 10000.0, 'used': 0.0,
                                                 'total': 10000.0, 'wallet': 10000.0}
    assert store.get_balance()['USDT'] == store.get_balance_details('USDT')


@pytest.mark.parametrize('endpoint', ['127.0.0.1:8765', 'ftp://127.0.0.1', 'http://', 42])
def test_a_store_refuses_an_endpoint_that_is_no_http_url(endpoint):
    with pytest.raises(btl.ConfigError, match=r'endpoint must be a base URL of the form '
                                              r'http://host:port'):
        BinanceStore.get_instance(apikey=KEY, secret=SECRET, endpoint=endpoint)
