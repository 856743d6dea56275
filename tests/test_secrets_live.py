"""No credential in any log line or on stdout during a live run, even at
DEBUG and with ccxt's verbose mode on: not the API key, the secret, a request
signature, nor the futures listenKey (a bearer credential for the stream)."""
import logging
import re

import ccxt
import pytest

from helpers import KEY, SECRET
from livekit import LiveRun
from venues import VENUES as _VENUES     # the one venue table (tests/venues.py)

VENUES = {v: row[:6] for v, row in _VENUES.items() if v != 'bybit-inverse'}

# HMAC-SHA256 in hex: Binance's signature, Bybit's X-BAPI-SIGN, the sim's listenKey
_HEX64 = re.compile(r'(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])')


@pytest.fixture
def venue_sim(request, sim):
    if VENUES[request.node.callspec.params['venue']][0] == 'bybit':
        from backtrader_live.sim import BybitSimulator
        with BybitSimulator(speed=None, start_index=600) as bybit:
            yield bybit
    else:
        yield sim


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_nothing_secret_reaches_logs_or_stdout(venue_sim, venue, caplog, capsys,
                                               monkeypatch):
    exchange, market_type, symbol, topic, market, size = VENUES[venue]
    # ccxt's verbose mode, as a user debugging a connection would switch it on
    monkeypatch.setattr(ccxt.Exchange, 'verbose', True)
    caplog.set_level(logging.DEBUG)
    run = LiveRun(venue_sim, exchange=exchange, symbol=symbol, topic=topic, user_market=market,
                  market_type=market_type, script={6: lambda s: s.buy(size=size)},
                  max_bars=2).start()
    run.step(2)
    run.join()
    assert run.rec.statuses().count('Completed') == 1
    store = run.rec.strategy.broker.store
    listen_key = getattr(store, '_listen_key', None)
    assert (listen_key is not None) == (exchange == 'binance' and market != 'spot')
    out = capsys.readouterr()
    texts = {'log': caplog.text, 'stdout': out.out, 'stderr': out.err}
    # Nothing secret in anything said...
    for where, text in texts.items():
        for name, secret in (('API key', KEY), ('secret', SECRET), ('listenKey', listen_key)):
            assert not secret or secret not in text, '%s in %s' % (name, where)
        leak = _HEX64.search(text)
        assert leak is None, 'a signature-like string in %s: %s' % (
            where, text[max(0, leak.start() - 80):leak.end()])
    # ...though ccxt did talk: its verbose lines are log records, not prints.
    assert any(r.name == 'ccxt.verbose' for r in caplog.records)
    assert 'fetch Request' in caplog.text and 'fetch Response' in caplog.text
