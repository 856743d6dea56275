"""The short soak on every venue: a strategy that trades on every bar under a
seeded schedule of overlapping faults (tests/soakkit.py); the long one is
benchmarks/soak.py. Every invariant of tests/soakcheck.py must hold and every
injected fault must have fired."""
import json

import pytest

from backtrader_live.sim.faults import PRESETS, SOAK_PRESETS, overlapping_schedule
from faultkit import matrix_rows, record  # noqa: F401
from soakkit import CORE, READ_OUTAGE, VENUES, presets_for, soak, suite_presets

BARS = 18
SEED = 11
OUTAGE_BARS = 9         # the least that fits 2 fault steps, the heal and the close
KIND = {'spot': 'spot', 'futures': 'USDⓈ-M / linear', 'linear': 'USDⓈ-M / linear',
        'delivery': 'COIN-M / inverse', 'inverse': 'COIN-M / inverse'}


def _explain(report):
    return 'soak broke %d invariant(s); reproduce: %s\n%s' % (
        len(report['violations']), report['reproduce'],
        json.dumps(report['violations'], indent=1))


def _sound(report, bars, names):
    assert report['violations'] == [], _explain(report)
    assert report['bars_seen'] == bars + 5 and report['run_deaths'] == 0
    assert report['overlapping_steps'] >= 1
    assert set(report['faults_by_kind']) == set(names)
    assert report['orders'] >= bars and report['fills'] >= 1


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_soak_short(venue):
    names = suite_presets(venue)
    report = soak(venue, SEED, BARS, names=names, rate=0.0)
    _sound(report, BARS, names)
    v = VENUES[venue]
    record('seeded soak, %s: %d live bars, overlapping faults (seed %d)' % (
        KIND[v.market_type], BARS, SEED), v.exchange,
        '%d orders, %d fills, %d bars: none lost or duplicated, position = exchange; '
        '%d faults (%d steps with several), each fired' % (
            report['orders'], report['fills'], report['bars_seen'], report['faults'],
            report['overlapping_steps']))


@pytest.mark.parametrize('venue', sorted(VENUES))
def test_soak_cancel_answer_lost_while_order_queries_fail(venue):
    names = [n for n in READ_OUTAGE if n in presets_for(venue)]
    report = soak(venue, SEED, OUTAGE_BARS, names=names, rate=0.0, most=2, probe=False)
    _sound(report, OUTAGE_BARS, names)


def test_suite_soaks_inject_every_preset_somewhere():
    """The six short soaks together cover every preset, each where it applies."""
    covered = set(READ_OUTAGE).union(*(suite_presets(v) for v in VENUES))
    assert covered == set(PRESETS)
    assert set(SOAK_PRESETS) <= set(PRESETS)
    for venue in VENUES:
        assert set(CORE) <= set(suite_presets(venue))
        assert set(suite_presets(venue)) <= set(presets_for(venue))


def test_overlapping_schedule_is_seeded_complete_and_never_hides_a_fault():
    names = sorted(PRESETS)
    plan = overlapping_schedule(5, 25, names, rate=0.3, most=3)
    assert plan == overlapping_schedule(5, 25, names, rate=0.3, most=3)
    assert plan != overlapping_schedule(6, 25, names, rate=0.3, most=3)
    placed = [n for _, group in plan for n in group]
    assert set(placed) == set(names)
    assert any(len(group) > 1 for _, group in plan)
    for _, group in plan:
        assert len(group) <= 3 and len(set(group)) == len(group)
        # never two faults on one stream channel (or the clock) at once
        assert not ({'ws_drop_all', 'ws_drop_public'} <= set(group))
        assert sum(n in ('clock_jump', 'inflight_create_clock_jump') for n in group) <= 1
    with pytest.raises(ValueError, match='do not fit'):
        overlapping_schedule(5, 3, names, most=2)


def test_a_fault_lands_while_a_request_is_in_flight():
    """rest(..., during=...): the stream drops while the request is held, the
    request is then handled; counts keeps every fault by kind."""
    import urllib.request

    import websocket

    from backtrader_live.sim import BinanceSimulator
    with BinanceSimulator(speed=None, start_index=600) as sim:
        ws = websocket.create_connection(sim.ws_url + '/ws/btcusdt@kline_1h', timeout=5)
        sim.wait_subscribed('btcusdt@kline_1h')
        rule = sim.faults.rest('time', 'delay', seconds=0.2,
                               during=lambda f: f.drop_ws_now('public'))
        with urllib.request.urlopen(sim.base_url + '/api/v3/time', timeout=5) as answer:
            assert 'serverTime' in json.loads(answer.read())       # handled after all
        assert rule.hits == 1
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            ws.settimeout(5)
            while True:
                ws.recv()           # the close frame, then nothing
        assert sim.faults.counts['rest delay'] == 1 and sim.faults.counts['ws drop'] == 1
        assert ('ws drop', 'public x1 for 0.0s') in sim.faults.applied
        ws.close()
