"""benchmarks/bench_vs_btccxt.py in its quickest mode, on our two stacks: the
JSON it prints has every figure, bt-ccxt-store (absent here) is reported as
skipped rather than silently left out, and the facts hold: no duplicate order
after a lost create answer (the fault fired), no forming candle given to
``next()``, no REST polling while bars pass. Timings are not asserted."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'benchmarks', 'bench_vs_btccxt.py')
FIGURES = {'rest_calls_per_bar', 'rest_calls_per_second', 'rest_calls_per_1h_bar_extrapolated',
           'idle_requests_by_path', 'bar_latency_ms', 'bars_closed', 'bars_seen_before_close',
           'order_round_trip_ms', 'bars_until_completed', 'bars_delivered', 'bars_verified',
           'partial_bars', 'duplicate_orders', 'lost_answer', 'stopped'}


def test_quick_run_of_our_stacks(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    done = subprocess.run([sys.executable, SCRIPT, '--quick', '--max-wait', '0',
                           '--btccxt-path', str(tmp_path / 'no-checkout')],
                          capture_output=True, text=True, timeout=100, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result['benchmark'] == 'vs_btccxt' and result['quick'] is True
    # the stack that is not there is named, with where it was looked for
    assert set(result['skipped']) == {'bt-ccxt-store'}
    assert str(tmp_path / 'no-checkout') in result['skipped']['bt-ccxt-store']
    assert 'skipped bt-ccxt-store' in done.stderr
    assert set(result['stacks']) == {'generic', 'native'}
    for stack, figures in result['stacks'].items():
        assert set(figures) == FIGURES, stack
        lost = figures['lost_answer']
        assert lost['fault_fired'] == 1, stack           # the create's answer was lost
        assert lost['placed'] == lost['exchange_holds'] == 1, (stack, lost)
        assert figures['duplicate_orders'] == 0, stack
        assert lost['final_status'] == 'Completed', (stack, lost)
        assert figures['bars_verified'] > 0 and figures['partial_bars'] == 0, (stack, figures)
        assert figures['bars_seen_before_close'] == 0, stack
        assert figures['bar_latency_ms']['n'] == figures['bars_closed'] > 0, stack
        assert figures['order_round_trip_ms']['n'] == result['params']['orders'], stack
        # Completed without waiting for another bar, the lost answer's order too
        assert figures['bars_until_completed'] == [0] * (result['params']['orders'] + 1), stack
        assert figures['rest_calls_per_bar'] == 0, (stack, figures['idle_requests_by_path'])
        assert figures['stopped'] is True, stack
