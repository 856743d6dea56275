"""start() returns once the simulator's loop runs: a test helper called right
after it, or stop(), never finds the loop between start-up and running."""
import asyncio
import threading

from backtrader_live.sim import BinanceSimulator, BybitSimulator, server


def test_start_returns_once_the_loop_runs(monkeypatch):
    """The loop is slow to go from start-up to running (a loaded machine):
    start() still returns only when helpers can use it."""
    reached = threading.Event()
    real = asyncio.new_event_loop

    def slow_loop():
        loop = real()
        run_forever = loop.run_forever

        def late_run_forever():
            reached.set()
            threading.Event().wait(0.3)      # the gap, made wide (no sleep-and-hope:
            run_forever()                    # start() must wait it out, whatever it is)
        loop.run_forever = late_run_forever
        return loop
    monkeypatch.setattr(server.asyncio, 'new_event_loop', slow_loop)
    for cls in (BinanceSimulator, BybitSimulator):
        reached.clear()
        with cls(speed=None, start_index=600) as sim:
            assert reached.is_set()
            sim.step()                       # was: RuntimeError: the simulator is not running
        assert sim._thread is None           # and stop() stopped it (no thread left)
