"""Small pieces of the recovery logic on their own: the receive-window rule,
stopping while an order is unresolved, and the simulator's CLI with faults."""
import os
import signal
import threading
import time
import types

import backtrader_live as btl
from backtrader_live import recovery
from backtrader_live.orders import OrderBook
from backtrader_live.sim import __main__ as sim_cli
from backtrader_live.sim.__main__ import main


class _Store:
    """A store whose queries fail or find nothing, and that is stopping."""

    def __init__(self, stop=True, answer=None):
        self._stop_event = threading.Event()
        if stop:
            self._stop_event.set()
        self._backoff = btl.backoff.Backoff(base=0.01, cap=0.02)
        self.recv_window_ms = 60000.0
        self.answer = answer

    def fetch_order_by_client_id(self, cid, symbol, conditional):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _broker(store):
    rejected = []
    broker = types.SimpleNamespace(
        store=store, _book=OrderBook(), p=types.SimpleNamespace(resolve_attempts=3),
        halt_if_fatal=lambda exc: None,
        _finish_rejected=lambda order, reason: rejected.append(reason))
    return broker, rejected


def test_an_order_not_sent_by_us_has_no_window():
    broker, _ = _broker(_Store())
    assert recovery.window_left(broker, types.SimpleNamespace(ref=-1)) == 0.0


def test_stopping_while_the_window_is_open_leaves_the_order_submitted():
    broker, rejected = _broker(_Store(stop=True, answer=None))
    order = types.SimpleNamespace(ref=1, info={}, addinfo=lambda **kw: None)
    broker._book.add(order, 'cid-1')
    assert recovery.window_left(broker, order) > 59
    assert recovery.resolve_unknown(broker, order, 'cid-1', 'BTC/USDT', False) is None
    assert rejected == []           # not found, but the window is open: not final


def test_stopping_while_queries_fail_leaves_the_order_submitted():
    broker, rejected = _broker(_Store(stop=True, answer=btl.errors.RetryableError('down')))
    order = types.SimpleNamespace(ref=2, info={}, addinfo=lambda **kw: None)
    broker._book.add(order, 'cid-2')
    assert recovery.resolve_unknown(broker, order, 'cid-2', 'BTC/USDT', False) is None
    assert rejected == []


def test_cli_serves_with_faults_until_sigterm(capsys, monkeypatch):
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    cancelled, all_applied = threading.Event(), threading.Event()
    real_run_faults = sim_cli.run_faults

    def spy(sim, planned, elapsed):
        # The real run_faults; the spy only says when nothing is left waiting,
        # so SIGTERM comes after the at=0.2 fault however slow the start was.
        waiting = real_run_faults(sim, planned, elapsed)
        if not waiting:
            all_applied.set()
        return waiting
    monkeypatch.setattr(sim_cli, 'run_faults', spy)

    def stop_when_all_faults_applied():
        if all_applied.wait(30) and not cancelled.is_set():
            os.kill(os.getpid(), signal.SIGTERM)
    timer = threading.Thread(target=stop_when_all_faults_applied, name='test-cli-stopper',
                             daemon=True)
    timer.cancel = cancelled.set
    timer.start()
    try:
        code = main(['--exchange', 'bybit', '--speed', '60', '--fault', 'clock_offset:ms=5',
                     '--fault', 'expire_user_streams', '--fault', 'ws_drop_all,at=0.2'])
    finally:
        timer.cancel()
        all_applied.set()                # let the stopper end if main failed early
        timer.join(5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out = capsys.readouterr()
    assert code == 0 and 'fault injected: clock_offset' in out.out
    assert 'fault injected: ws_drop_all' in out.out
    assert 'expire_user_streams {} not injected: Bybit user streams do not expire' in out.err
    assert main(['--exchange', 'nope']) == 2 and main(['--exchange', 'bybit', '--speed', '0']) == 2
