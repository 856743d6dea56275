"""A long run under a seeded random mix of faults, on each exchange: the
same invariants as the matrix (faultkit.check) hold at the end."""
import pytest

import backtrader_live as btl
from backtrader_live.sim.faults import PRESETS, SOAK_PRESETS, apply_spec, random_schedule
from faultkit import EXCHANGES, check, make_sim, matrix_rows, record, scenario  # noqa: F401
from helpers import eventually

LIVE = 26
SEED = 20260606


def _script(bars):
    """Trade on most bars: buy, rest a limit, sell what is held, cancel."""
    def sell_held(s):
        if s.position.size >= 0.002:
            s.sell(size=0.002)

    def cancel_limit(s):
        if getattr(s, 'last_limit', None) is not None and s.last_limit.alive():
            s.cancel(s.last_limit)
    actions = {0: lambda s: s.buy(size=0.002),
               1: lambda s: setattr(s, 'last_limit', s.buy(
                   size=0.002, price=round(s.data.close[0] * 0.998, 2), exectype=btl.Order.Limit)),
               2: sell_held, 3: cancel_limit}
    return {bar: actions[bar % 4] for bar in range(6, 6 + bars)}


def _inject(name):
    return lambda sim, run: apply_spec(sim.faults, name, {})


def _hooks(schedule):
    """The faults at their steps, then (3 bars before the end) all healed."""
    hooks = {step: _inject(name) for step, name in schedule}

    def heal(sim, run):
        sim.faults.clear()
        sim.wait_user_subscribed(timeout=10)
        broker = run.rec.strategy.broker
        eventually(lambda: broker.store.user_stream_live and broker.settled(), 10)
    hooks[LIVE - 3] = heal
    return hooks


@pytest.mark.parametrize('exchange', EXCHANGES)
def test_seeded_random_fault_mix(exchange):
    # Bybit's private streams do not expire: that preset is Binance's only. The
    # soak's presets (more, overlapping) are tests/test_faults_soak.py's.
    names = [n for n in PRESETS if (exchange == 'binance' or n != 'user_stream_expiry')
             and n not in SOAK_PRESETS]
    schedule = random_schedule(SEED, LIVE - 4, rate=0.25, names=names)
    assert {name for _, name in schedule} == set(names)
    sim = make_sim(exchange)
    try:
        run = scenario(sim, exchange, _hooks(schedule), script=_script(LIVE), steps=LIVE)
        outcome = check(run, sim, exchange)
    finally:
        sim.stop()
    record('random mix of every preset over %d bars (seed %d)' % (LIVE, SEED), exchange,
           '%s; %d faults: %s' % (outcome, len(schedule), ', '.join(n for _, n in schedule)))
