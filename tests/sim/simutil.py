"""Helpers for the simulator tests (a module of its own: a bare ``conftest`` import
could pick up another directory's conftest)."""
import json
import os
import re
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import ccxt  # noqa: E402
import websocket  # noqa: E402

from backtrader_live.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET, BinanceSimulator  # noqa: E402

KEY, SECRET = DEFAULT_API_KEY, DEFAULT_API_SECRET


def eventually(cond, timeout=5.0, interval=0.005):
    """Poll ``cond`` until it is truthy; return its value or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('condition not met within %ss' % timeout)
        time.sleep(interval)


def point_ccxt(ex, base_url):
    """Override only URLs: every https://host prefix of urls['api'] -> base_url."""
    for key, url in list(ex.urls['api'].items()):
        if isinstance(url, str):
            ex.urls['api'][key] = re.sub(r'^https://[^/]+', base_url, url)
    return ex


def make_ccxt(sim, key=KEY, secret=SECRET, default=False, **config):
    """ccxt.binance as the brief prescribes: public/private/v1 (+ sapi/fapi/dapi)."""
    opts = {} if default else {'options': {'fetchCurrencies': False, 'fetchMargins': False}}
    opts.update(config)
    ex = ccxt.binance(dict(apiKey=key, secret=secret, enableRateLimit=False, **opts))
    if default:
        return point_ccxt(ex, sim.base_url)
    for k in ('public', 'private', 'v1'):
        ex.urls['api'][k] = sim.base_url + ('/api/v1' if k == 'v1' else '/api/v3')
    for k in list(ex.urls['api']):
        if k.startswith(('sapi', 'fapi', 'dapi')):
            ex.urls['api'][k] = re.sub(r'^https://[^/]+', sim.base_url, ex.urls['api'][k])
    return ex


class WsClient:
    """A websocket-client connection that decodes JSON messages."""

    def __init__(self, url, timeout=5):
        self.ws = websocket.create_connection(url, timeout=timeout)

    def send(self, data):
        self.ws.send(json.dumps(data))

    def recv(self):
        return json.loads(self.ws.recv())

    def recv_until(self, pred, limit=500):
        seen = []
        for _ in range(limit):
            msg = self.recv()
            seen.append(msg)
            if pred(msg):
                return msg, seen
        raise AssertionError('message not received; saw %r' % seen[-5:])

    def drain(self, quiet=0.05):
        """Every message already waiting (stops after ``quiet`` s of silence)."""
        out = []
        self.ws.settimeout(quiet)
        try:
            while True:
                out.append(json.loads(self.ws.recv()))
        except websocket.WebSocketTimeoutException:
            pass
        finally:
            self.ws.settimeout(5)
        return out

    def close(self):
        self.ws.close()


H = 3600000


def write_data(path, n=40):
    """Flat at 100 up to bar 5, then every bar 100 -> 110 -> 90 -> 100, volume 10."""
    rows = [[i * H, 100, 100, 100, 100, 10] for i in range(6)]
    rows += [[i * H, 100, 110, 90, 100, 10] for i in range(6, n)]
    path.write_text(json.dumps(rows))
    return str(path)


def make_futures_ccxt(sim, key=KEY, secret=SECRET, inverse=False, **options):
    """ccxt for USD-M (binance, defaultType swap) or COIN-M (binancecoinm): only the
    hosts of urls['api'] change; sapi probes are switched off by options."""
    opts = {'fetchCurrencies': False, 'fetchMargins': False}
    opts.update(options)
    cls = ccxt.binancecoinm if inverse else ccxt.binanceusdm
    ex = cls(dict(apiKey=key, secret=secret, enableRateLimit=False, options=opts))
    return point_ccxt(ex, sim.base_url)


def make_bybit_ccxt(sim, key=KEY, secret=SECRET, probes=False):
    """ccxt.bybit on the simulator: urls['api'] public/private -> sim.base_url.
    Without ``probes`` the options skip the unified-account probes and the
    hidden asset/coin/query-info call (has['fetchCurrencies'] = False)."""
    opts = {'fetchMarkets': {'types': ['spot', 'linear', 'inverse']}}
    if not probes:
        opts.update({'enableUnifiedMargin': False, 'enableUnifiedAccount': True,
                     'unifiedMarginStatus': 6})
    ex = ccxt.bybit(dict(apiKey=key, secret=secret, enableRateLimit=False, options=opts))
    if not probes:
        ex.has['fetchCurrencies'] = False
    for k in list(ex.urls['api']):
        ex.urls['api'][k] = sim.base_url
    return ex
