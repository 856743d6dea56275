"""backtrader_live.sim: a local exchange for tests and demos.

``BinanceSimulator`` serves the Binance spot REST API, market streams and the
WS-API user-data stream, plus USD-M and COIN-M futures (REST, split streams,
listenKey user data) on one 127.0.0.1 port, replaying real candles re-dated
to now.  ``BybitSimulator`` serves Bybit v5 (spot, linear, inverse).  The unmodified ccxt and websocket-client talk to it with only their
URLs changed.  See ``docs/simulator.md``.

The default account's credentials are public constants::

    DEFAULT_API_KEY = 'bt-live-sim-key'
    DEFAULT_API_SECRET = 'bt-live-sim-secret'

This package never imports the live layer (nor backtrader): it is an
independent exchange that ships in the same distribution.
"""
from .bybit_server import BybitSimulator
from .server import DEFAULT_API_KEY, DEFAULT_API_SECRET, BinanceSimulator

#: exchange name -> simulator class (the CLI's ``--exchange`` choices)
SIMULATORS = {'binance': BinanceSimulator, 'bybit': BybitSimulator}

__all__ = ['BinanceSimulator', 'BybitSimulator', 'DEFAULT_API_KEY', 'DEFAULT_API_SECRET',
           'SIMULATORS']
