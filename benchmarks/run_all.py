#!/usr/bin/env python
"""Run every benchmark one after the other; save each JSON to ``--out``.

    python benchmarks/run_all.py [--quick] [--out benchmarks/results] [--only a,b]

Each benchmark waits (bounded) for the 1-minute load average to drop under
0.7 before measuring and records the load it measured at. Prints one JSON
object: {name: {"rc", "seconds", "file", "summary"}}.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = ['baselines', 'order_latency', 'bar_latency', 'idle_cpu', 'memory',
              'backtest_overhead', 'throughput', 'vs_btccxt', 'rearm_trail']
EXTRA = {'backtest_overhead': ['--breakdown']}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--quick', action='store_true')
    p.add_argument('--out', default=os.path.join(HERE, 'results'))
    p.add_argument('--only', default=None, help='comma-separated names')
    p.add_argument('--max-wait', default=None, help='passed on to each benchmark')
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    names = args.only.split(',') if args.only else BENCHMARKS
    report = {}
    for name in names:
        cmd = [sys.executable, os.path.join(HERE, 'bench_%s.py' % name)] + EXTRA.get(name, [])
        if args.quick:
            cmd.append('--quick')
        if args.max_wait is not None:
            cmd += ['--max-wait', args.max_wait]
        path = os.path.join(args.out, '%s%s.json' % (name, '.quick' if args.quick else ''))
        sys.stderr.write('== %s\n' % ' '.join(cmd))
        t0 = time.monotonic()
        with open(path, 'w') as out:
            rc = subprocess.call(cmd, stdout=out)
        summary = None
        try:
            with open(path) as fh:
                summary = json.load(fh).get('summary')
        except ValueError:
            pass
        report[name] = {'rc': rc, 'seconds': round(time.monotonic() - t0, 1), 'file': path,
                        'summary': summary}
    sys.stdout.write(json.dumps(report, indent=1) + '\n')
    return 0 if all(r['rc'] == 0 for r in report.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
