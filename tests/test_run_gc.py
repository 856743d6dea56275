"""run_live and the garbage collector: it freezes what exists for the run and
unfreezes it afterwards, unless the process froze objects itself (a pre-fork
server, this test suite: tests/conftest.py), whose frozen objects stay frozen."""
import gc

import backtrader as bt

from livekit import LiveRun


class SeesFreezeCount(bt.Strategy):
    params = (('rec', None),)

    def __init__(self):
        self.p.rec.strategy = self

    def next(self):
        self.p.rec.bars.append(gc.get_freeze_count())


def _paper_run(sim):
    run = LiveRun(sim, strategy=SeesFreezeCount, strategy_params=None, paper_trading=True,
                  max_bars=1)
    run.start()
    run.step(1)
    run.join()
    return run.rec.bars


def test_a_process_that_froze_nothing_is_frozen_for_the_run_only(sim):
    gc.unfreeze()
    try:
        counts = _paper_run(sim)
        assert counts and min(counts) > 0          # frozen while the run went on
        assert gc.get_freeze_count() == 0          # and given back afterwards
    finally:
        gc.freeze()                                # the suite's own (conftest.py)


def test_objects_the_process_froze_stay_frozen(sim):
    assert gc.get_freeze_count() > 0               # conftest.py froze the suite's
    gc.freeze()
    frozen = gc.get_freeze_count()
    counts = _paper_run(sim)
    # A frozen object that is freed leaves the count (a few do); a freeze by
    # the run would add what was made since, an unfreeze would empty it.
    assert counts and max(counts) <= frozen        # the run froze nothing more
    assert frozen - gc.get_freeze_count() < 1000   # and unfroze nothing
