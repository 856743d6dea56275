"""backtrader's own order samples (bracket, OCO, trailing stop), run as a
backtest over the simulator's candles and live against the simulator on all
six venues: the same orders (type, side, size, price) reach the same
statuses in the same order per order (issue 14)."""
import backtrader as bt
import pytest

import backtrader_live as btl
from helpers import load_rows
from livekit import Recorder
from test_order_links import RefRecording
from test_risk_kit import feed
from generickit import GENERIC_VENUES, generic_run
from venues import ALL, VENUES, live_run, unit, venue_sim

FIRST_ROW = 595     # script bar 1 (the simulator starts at row 600 = bar 6)
STEPS = 10          # bars 6..15: the bracket's stop fills at bar 14


def _script(size, exit_size):
    def samples(s):
        # bracket sample: a limit entry, a stop loss and a take profit
        s.placed = list(s.buy_bracket(size=size, price=4180.0, stopprice=4160.0,
                                      limitprice=4450.0))
        # oco sample: a breakout either way, the first to fill cancels the other
        o1 = s.buy(size=size, price=4100.0, exectype=bt.Order.Limit)
        s.placed += [o1, s.buy(size=size, price=4250.0, exectype=bt.Order.Stop, oco=o1)]
        # trailing sample: enter, then a stop 30 below the best close since
        s.placed += [s.buy(size=size),
                     s.sell(size=exit_size, exectype=bt.Order.StopTrail, trailamount=30.0)]
    return {6: samples}


def _per_order(rec, placed):
    seen = {o.ref: [] for o in placed}
    for ref, status in rec.refs:
        seen[ref].append(status)
    return [(o.ordtypename(), o.getordername(), o.created.size, o.created.price, seen[o.ref])
            for o in placed]


def _backtest(size, exit_size):
    rec = Recorder()
    cerebro = bt.Cerebro()
    cerebro.adddata(feed(load_rows()[FIRST_ROW:FIRST_ROW + 5 + STEPS]))
    cerebro.broker.setcash(1e9)
    cerebro.addstrategy(RefRecording, rec=rec, script=_script(size, exit_size))
    (strategy,) = cerebro.run()
    return _per_order(rec, strategy.placed)


def _live_matches_the_backtest(venue, make_run):
    spot = VENUES[venue][4] == 'spot'
    size = unit(venue)
    exit_size = size * 0.999 if spot else size      # spot: the fee is taken in BTC
    with venue_sim(venue) as sim:
        run = make_run(sim, venue, script=_script(size, exit_size), max_bars=STEPS,
                       strategy=RefRecording).start()
        run.step(STEPS)
        run.join()
    live = _per_order(run.rec, run.rec.strategy.placed)
    backtest = _backtest(size, exit_size)
    assert len(live) == len(backtest) == 7
    for ours, theirs in zip(live, backtest):
        assert ours[:2] == theirs[:2] and ours[4] == theirs[4], (live, backtest)
        # sizes: spot children sell what the entry left after its fee
        assert abs(ours[2]) == pytest.approx(abs(theirs[2]), rel=0.0011 if spot else 1e-9)
        assert ours[3] == pytest.approx(theirs[3])      # incl. the trailed stop level
    assert [o[4][-1] for o in live] == ['Completed', 'Completed', 'Canceled', 'Canceled',
                                        'Completed', 'Completed', 'Completed']


@pytest.mark.parametrize('venue', ALL)
def test_samples_place_the_same_orders_live_as_in_a_backtest(venue):
    _live_matches_the_backtest(venue, live_run)


@pytest.mark.parametrize('venue', GENERIC_VENUES)
def test_samples_place_the_same_orders_on_the_generic_tier(venue):
    """The same samples through 'ccxt:<exchange>' (ccxt + ccxt.pro, no native
    store): the order vocabulary is the live broker's, whatever the tier."""
    _live_matches_the_backtest(venue, generic_run)
