"""Shared fixtures: a step-mode simulator, live runs in a worker thread, and
checks that no test leaves threads or cached stores behind."""
import fcntl
import gc
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from backtrader_live.sim import BinanceSimulator  # noqa: E402
from backtrader_live.store import Store  # noqa: E402


def pytest_collection_finish(session):
    """Freeze what the test process holds once collected (pytest, the test
    modules, ccxt's classes: ~300,000 objects) out of the garbage collector.
    Otherwise every full collection (run_live starts with one) rescans them:
    ~0.25 s of CPU holding the GIL, two thirds of a live test's CPU, and a
    simulator in this process that cannot answer meanwhile. run_live leaves a
    process that froze objects itself as it is (cerebro._freeze_for_the_run;
    tests/test_run_gc.py checks both ways)."""
    gc.collect()
    gc.freeze()


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'serial: runs while no other test of the session runs (a latency or '
        'duration bound that other workers\' CPU use would break); see serial_or_shared')


@pytest.fixture(scope='session')
def _lock_base(tmp_path_factory):
    """Lock files shared by this run's workers (their temp dirs' common parent)."""
    return str(tmp_path_factory.getbasetemp().parent / 'btl-serial')


@pytest.fixture(autouse=True)
def serial_or_shared(request, _lock_base):
    """Under pytest-xdist a ``serial`` test runs alone: it holds the run lock
    exclusively, every other test holds it shared. The gate lets no new test
    start while a serial one waits for those running to end (no starvation).
    One process (-n 0): nothing to do. A crashed worker's locks go with it."""
    if not os.environ.get('PYTEST_XDIST_WORKER'):
        yield
        return
    serial = request.node.get_closest_marker('serial') is not None
    with open(_lock_base + '.gate', 'a') as gate, open(_lock_base + '.run', 'a') as run:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(run, fcntl.LOCK_EX if serial else fcntl.LOCK_SH)
        finally:
            if not serial:
                fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(run, fcntl.LOCK_UN)
            if serial:
                fcntl.flock(gate, fcntl.LOCK_UN)


def _ours(t):
    return t.name.startswith('bt-live')


@pytest.fixture(autouse=True)
def no_leftovers():
    """Every test ends with our threads joined and stores forgotten."""
    before = {t for t in threading.enumerate() if _ours(t)}
    yield
    Store.forget_instances()
    for t in [t for t in threading.enumerate() if _ours(t) and t not in before]:
        t.join(5.0)
    left = [t.name for t in threading.enumerate() if _ours(t) and t not in before]
    assert not left, 'threads left behind: %s' % left


@pytest.fixture
def sim():
    """A Binance simulator in step mode: the test moves the market clock."""
    with BinanceSimulator(speed=None, start_index=600) as s:
        yield s


@pytest.fixture
def make_sim():
    """Build simulators with custom options; all are stopped at the end."""
    made = []

    def factory(**kwargs):
        kwargs.setdefault('speed', None)
        kwargs.setdefault('start_index', 600)
        s = BinanceSimulator(**kwargs)
        s.start()
        made.append(s)
        return s
    yield factory
    for s in made:
        s.stop()
