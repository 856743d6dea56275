"""backtrader_live.sim: a local exchange for tests and demos.

``BinanceSimulator`` serves the Binance spot REST API, market streams and the
WS-API user-data stream on one 127.0.0.1 port, replaying real candles re-dated
to now.  The unmodified ccxt and websocket-client talk to it with only their
URLs changed.  See ``docs/simulator.md``.

The default account's credentials are public constants::

    DEFAULT_API_KEY = 'bt-live-sim-key'
    DEFAULT_API_SECRET = 'bt-live-sim-secret'

This package never imports the live layer (nor backtrader): it is an
independent exchange that ships in the same distribution.
"""
from .server import DEFAULT_API_KEY, DEFAULT_API_SECRET, BinanceSimulator

#: exchange name -> simulator class (the CLI's ``--exchange`` choices)
SIMULATORS = {'binance': BinanceSimulator}

__all__ = ['BinanceSimulator', 'DEFAULT_API_KEY', 'DEFAULT_API_SECRET', 'SIMULATORS']
