"""Start/stop hygiene, speed mode, latency, the CLI and the import boundary."""
import ast
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import ccxt
import pytest
import requests

from backtrader_live.sim import SIMULATORS, BinanceSimulator, BybitSimulator
from backtrader_live.sim.__main__ import main as cli_main
from simutil import KEY, ROOT, SECRET, eventually, make_ccxt

SIM_DIR = pathlib.Path(ROOT) / 'backtrader_live' / 'sim'


def test_stop_leaves_no_thread_or_socket(ws_factory):
    before = set(threading.enumerate())
    sim = BinanceSimulator()
    with sim:
        assert any(t.name == 'bt-live-sim-binance' and t.daemon for t in threading.enumerate())
        c = ws_factory(sim.ws_url + '/ws/btcusdt@kline_1h')
        sim.wait_subscribed('btcusdt@kline_1h')
        port = sim.port
    assert set(threading.enumerate()) <= before | {threading.current_thread()}
    with pytest.raises(requests.ConnectionError):
        requests.get('http://127.0.0.1:%d/api/v3/ping' % port, timeout=1)
    try:
        data = c.ws.recv()   # the server's close frame
    except Exception:
        data = ''
    assert data == '' and not c.ws.connected
    sim.stop()   # idempotent
    with pytest.raises(RuntimeError):
        sim.price('BTC/USDT')


def test_start_failure_is_reported():
    with BinanceSimulator() as a:
        b = BinanceSimulator(port=a.port)
        b.host = '256.0.0.1'   # not an address: the bind fails
        with pytest.raises(RuntimeError, match='failed to start'):
            b.start()


def test_speed_mode_runs_the_clock(ws_factory):
    with BinanceSimulator(speed=3600 * 20) as sim:  # 20 bars per second
        t0 = sim.now_ms()
        c = ws_factory(sim.ws_url + '/ws/btcusdt@kline_1h')
        eventually(lambda: sim.now_ms() > t0 + 3 * 3600000, timeout=5)
        _, seen = c.recv_until(lambda m: m['k']['x'])
        with pytest.raises(RuntimeError):
            sim.step()


def test_clock_stops_at_the_end_of_data(tmp_path):
    import json
    p = tmp_path / 'BTCUSDT.json'
    p.write_text(json.dumps([[i * 3600000, 10, 11, 9, 10, 1] for i in range(4)]))
    with BinanceSimulator(data=str(p), start_index=2) as sim:
        assert not sim.finished
        rows = sim.step(5)
        assert len(rows) == 2 and sim.finished
        assert sim.step() == []


@pytest.mark.serial      # a latency/duration bound: alone, not beside other workers
def test_create_order_round_trip_is_about_a_millisecond(sim):
    ex = make_ccxt(sim)
    ex.load_markets()
    ex.create_order('BTC/USDT', 'limit', 'buy', 0.01, 1000)   # warm the connection
    times = []
    for _ in range(30):
        t = time.perf_counter()
        ex.create_order('BTC/USDT', 'limit', 'buy', 0.01, 1000)
        times.append(time.perf_counter() - t)
    times.sort()
    print('signed ccxt create_order round trip: median %.2f ms' % (times[15] * 1000))
    assert times[15] < 0.010 and times[-1] < 0.035    # no 40 ms Nagle/delayed-ACK stall


def test_sim_never_imports_the_live_layer():
    for path in SIM_DIR.glob('*.py'):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ''
                assert node.level == 1 or not mod.startswith(('backtrader', 'backtrader_live')), path
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith('backtrader') for a in node.names), path


def test_registry_and_cli_argument_errors(capsys):
    assert SIMULATORS == {'binance': BinanceSimulator, 'bybit': BybitSimulator}
    assert cli_main(['--exchange', 'okx']) == 2
    assert 'accepted values: binance, bybit' in capsys.readouterr().err
    assert cli_main(['--exchange', 'binance', '--speed', '0']) == 2
    with pytest.raises(SystemExit):
        cli_main(['--exchange', 'binance', '--balance', 'USDT'])


def test_cli_serves_signed_calls_and_exits_on_sigterm():
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(
        [sys.executable, '-m', 'backtrader_live.sim', '--exchange', 'binance', '--port', '0',
         '--balance', 'USDT=500', '--balance', 'BTC=1', '--api-key', 'cli-k',
         '--api-secret', 'cli-s'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        m = re.match(r'backtrader_live\.sim binance serving on (http://127\.0\.0\.1:\d+) '
                     r'\(ws ws://127\.0\.0\.1:\d+\)$', line.strip())
        assert m, line + proc.stderr.read()

        class Sim:
            base_url = m.group(1)
        ex = make_ccxt(Sim, key='cli-k', secret='cli-s')
        bal = ex.fetch_balance()
        assert bal['USDT']['free'] == 500 and bal['BTC']['free'] == 1
        with pytest.raises(ccxt.AuthenticationError):
            make_ccxt(Sim, key='cli-k', secret='nope').fetch_balance()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert 'stopped' in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
