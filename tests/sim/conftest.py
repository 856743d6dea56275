"""Fixtures for the simulator tests: real ccxt and websocket-client against it."""
import threading

import pytest

from simutil import (BinanceSimulator, WsClient, eventually, make_ccxt, make_futures_ccxt,
                     write_data)


@pytest.fixture
def sim():
    with BinanceSimulator() as s:
        yield s


@pytest.fixture
def ex(sim):
    e = make_ccxt(sim)
    e.load_markets()
    return e


@pytest.fixture
def ws_factory():
    made = []

    def factory(url):
        c = WsClient(url)
        made.append(c)
        return c
    yield factory
    for c in made:
        c.close()


@pytest.fixture(autouse=True)
def no_leftover_threads():
    yield
    eventually(lambda: not [t for t in threading.enumerate()
                            if t.name.startswith('bt-live-sim')], timeout=5)


@pytest.fixture
def flat(tmp_path):
    """A simulator on the synthetic path of simutil.write_data, clock on a bar open."""
    with BinanceSimulator(data={'BTC/USDT': write_data(tmp_path / 'd.json')},
                          start_index=5, depth_qty=1.0, liquidity=0.1) as s:
        s.step()  # close the flat forming bar: the clock now sits on a bar open
        ex = make_ccxt(s)
        ex.load_markets()
        yield s, ex


@pytest.fixture
def fut(tmp_path):
    """USD-M futures on the synthetic path, clock on a bar open; ccxt.binanceusdm."""
    with BinanceSimulator(data={'BTC/USDT': write_data(tmp_path / 'd.json')},
                          start_index=5, liquidity=0.1) as s:
        s.step()
        ex = make_futures_ccxt(s)
        ex.load_markets()
        yield s, ex


@pytest.fixture
def coinm(tmp_path):
    """COIN-M futures (BTCUSD_PERP, 100 USD contracts) on the synthetic path."""
    with BinanceSimulator(data={'BTC/USDT': write_data(tmp_path / 'd.json')},
                          start_index=5, liquidity=0.1) as s:
        s.step()
        ex = make_futures_ccxt(s, inverse=True)
        ex.load_markets()
        yield s, ex


@pytest.fixture
def bybit(tmp_path):
    """BybitSimulator on the synthetic path (spot BTCUSDT, linear BTCUSDT, inverse BTCUSD)."""
    from backtrader_live.sim import BybitSimulator
    from simutil import make_bybit_ccxt
    with BybitSimulator(data={'BTC/USDT': write_data(tmp_path / 'd.json')},
                        start_index=5, liquidity=0.1) as s:
        s.step()
        ex = make_bybit_ccxt(s)
        ex.load_markets()
        yield s, ex
