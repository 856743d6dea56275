"""The long seeded random-fault soak (tests/soakkit.py), on every venue.

    python benchmarks/soak.py                       # 6 venues x 3 seeds x 60 live bars
    python benchmarks/soak.py --venues binance-usdm,bybit-linear --seeds 5 --bars 120
    python benchmarks/soak.py --venues binance-spot --first-seed 7 --seeds 1 --bars 32 \\
        --only cancel_lost_read_outage             # a reproduction: one fault kind

For each venue and seed a strategy trades on every live bar (market, limit,
stop, stop-limit, cancels, ``close()``) while every fault preset
(``backtrader_live.sim.faults.PRESETS``), several at once, is injected on a
seeded schedule. Prints one JSON object (figures per run and totals: orders,
fills, bars, faults by kind, lost/duplicated counts, run deaths, seconds;
every broken invariant with its venue, seed and the command that reproduces
it) and writes it to benchmarks/results/soak.json. Exits 1 if any invariant
broke. Not a timing benchmark: no load wait.
"""
import argparse
import collections
import logging
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests'))
sys.path.insert(0, HERE)

from _common import emit, machine, note  # noqa: E402
from soakkit import VENUES, soak  # noqa: E402

LOST = ('order lost', 'order duplicated', 'fill lost', 'fill duplicated', 'bars')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--venues', default=','.join(sorted(VENUES)),
                        help='comma-separated, of: %s' % ', '.join(sorted(VENUES)))
    parser.add_argument('--seeds', type=int, default=3, help='how many seeds per venue')
    parser.add_argument('--first-seed', type=int, default=1)
    parser.add_argument('--bars', type=int, default=60, help='live bars per run (>= 20)')
    parser.add_argument('--rate', type=float, default=0.3,
                        help='probability of one more fault at each step')
    parser.add_argument('--only', default='', help='comma-separated presets (default: all)')
    parser.add_argument('--without', action='append', default=[],
                        help='leave a preset out (repeatable)')
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'soak.json'),
                        help="where to write the JSON ('' for nowhere)")
    parser.add_argument('--docs', nargs='*', metavar='JSON',
                        help='write the table of these results (default: --out) into '
                             'docs/faults.md and exit without running')
    args = parser.parse_args(argv)
    venues = [v for v in args.venues.split(',') if v]
    unknown = [v for v in venues if v not in VENUES]
    if unknown:
        parser.error('unknown venue(s) %s; valid: %s' % (unknown, ', '.join(sorted(VENUES))))
    if args.bars < 20:
        parser.error('--bars must be at least 20 (the schedule, the heal and the close)')
    args.venues = venues
    return args


def totals(runs):
    violations = [v for r in runs for v in r['violations']]
    kinds = collections.Counter()
    for r in runs:
        kinds.update(r['faults_by_kind'])
    by_invariant = collections.Counter(v['invariant'] for v in violations)
    return {
        'runs': len(runs), 'live_bars': sum(r['live_bars'] for r in runs),
        'bars_seen': sum(r['bars_seen'] for r in runs),
        'orders': sum(r['orders'] for r in runs), 'fills': sum(r['fills'] for r in runs),
        'faults': sum(r['faults'] for r in runs),
        'faults_by_kind': dict(sorted(kinds.items())),
        'lost_or_duplicated': sum(1 for v in violations if v['invariant'] in LOST
                                  and not v.get('after_run_death')),
        # found after a run died: what the dead run could no longer learn (a
        # cancel or fill done on the exchange after its answer was lost)
        'after_run_death': sum(1 for v in violations if v.get('after_run_death')),
        'run_deaths': sum(r['run_deaths'] for r in runs),
        'violations_by_invariant': dict(sorted(by_invariant.items())),
        'clean_runs': sum(1 for r in runs if not r['violations']),
        'seconds': round(sum(r['seconds'] for r in runs), 1),
    }


def table(results):
    """docs/faults.md's soak table: one row per (results file, venue)."""
    rows = ['| presets | venue | runs x live bars | orders | fills | bars (5 of history a run) '
            '| faults (bars with several) | lost / duplicated | run deaths | other violations |',
            '|---|---|---|---|---|---|---|---|---|---|']
    for result in results:
        args = result['args']
        presets = 'all' + (' but ' + ', '.join(args['without']) if args['without'] else '')
        for venue in args['venues']:
            runs = [r for r in result['runs'] if r['venue'] == venue]
            t = totals(runs)
            other = collections.Counter(v['invariant'] for r in runs for v in r['violations']
                                        if v['invariant'] not in LOST + ('run death',)
                                        and not v.get('after_run_death'))
            rows.append('| %s | %s | %d x %d | %d | %d | %d | %d (%d) | %d | %d%s | %s |' % (
                presets, venue, len(runs), args['bars'], t['orders'], t['fills'],
                t['bars_seen'], t['faults'], sum(r['overlapping_steps'] for r in runs),
                t['lost_or_duplicated'], t['run_deaths'],
                ' (then %d order or fill outcome(s) it never learned)' % t['after_run_death']
                if t['after_run_death'] else '',
                ', '.join('%s %d' % kv for kv in sorted(other.items())) or '0'))
    stamp = ', '.join('`python benchmarks/soak.py %s` (%s, git %s, %.0f s)' % (
        _cli(r['args']), r['machine']['platform'].split('-')[0],
        r['machine']['backtrader_live']['git'], r['wall_seconds']) for r in results)
    return '\n'.join(rows) + '\n\n_Generated from %s._' % stamp


def _cli(args):
    out = ['--seeds %d --bars %d' % (args['seeds'], args['bars'])]
    if args['first_seed'] != 1:
        out.append('--first-seed %d' % args['first_seed'])
    out += ['--without %s' % n for n in args['without']]
    return ' '.join(out)


def write_docs(paths):
    import json
    import re
    results = []
    for path in paths:
        with open(path) as fh:
            results.append(json.load(fh))
    doc_path = os.path.join(ROOT, 'docs', 'faults.md')
    with open(doc_path) as fh:
        doc = fh.read()
    start, end = '<!-- soak:start -->', '<!-- soak:end -->'
    doc = re.sub(re.escape(start) + '.*?' + re.escape(end),
                 lambda _: '%s\n%s\n%s' % (start, table(results), end), doc, flags=re.S)
    with open(doc_path, 'w') as fh:
        fh.write(doc)
    note('soak table written to docs/faults.md from %s', ', '.join(paths))
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.docs is not None:
        return write_docs(args.docs or [args.out])
    logging.basicConfig(level=logging.CRITICAL)     # the soak's faults log loudly
    only = [n for n in args.only.split(',') if n] or None
    started = time.monotonic()
    runs = []
    for venue in args.venues:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            note('%s seed %d: %d live bars...', venue, seed, args.bars)
            report = soak(venue, seed, args.bars, rate=args.rate, without=args.without,
                          names=only)
            note('  %d orders, %d fills, %d faults, %d violation(s), %.0f s', report['orders'],
                 report['fills'], report['faults'], len(report['violations']),
                 report['seconds'])
            runs.append(report)
    result = {'benchmark': 'soak', 'machine': machine(),
              'args': {k: v for k, v in vars(args).items() if k != 'out'},
              'totals': totals(runs), 'wall_seconds': round(time.monotonic() - started, 1),
              'runs': runs}
    emit(result)
    if args.out:
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        import json
        with open(args.out, 'w') as fh:
            json.dump(result, fh, indent=1, default=str)
            fh.write('\n')
    return 1 if result['totals']['violations_by_invariant'] else 0


if __name__ == '__main__':
    sys.exit(main())
