"""Turn the JSON test_parity.py writes (PARITY_JSON=path) into docs/parity.md's table.

python tests/parity_table.py /tmp/parity.json
"""
import collections
import json
import sys

VENUES = ['binance-spot', 'binance-usdm', 'bybit-linear']


def table(rows):
    cells, cases = collections.OrderedDict(), []
    for r in rows:
        cells[(r['case'], r['venue'], r['mode'])] = r
        if r['case'] not in cases:
            cases.append(r['case'])
    out = ['| strategy | ' + ' | '.join('%s %s' % (v, m) for v in VENUES
                                       for m in ('paper', 'live')) + ' |',
           '|---|' + '---|' * 2 * len(VENUES)]
    for case in cases:
        out.append('| %s | %s |' % (case, ' | '.join(
            _cell(cells.get((case, v, m))) for v in VENUES for m in ('paper', 'live'))))
    return '\n'.join(out) + '\n'


def _cell(r):
    if r is None:
        return '**run did not finish** (xfail)'
    orders = 'orders equal' if r['orders_equal'] else '**orders differ**'
    fills = 'fills within rules' if r['fills_ok'] else '**fills differ**'
    return '%s / %s%s' % (orders, fills, ' (%s)' % ', '.join(r['rules']) if r['rules'] else '')


if __name__ == '__main__':
    sys.stdout.write(table(json.load(open(sys.argv[1]))))
