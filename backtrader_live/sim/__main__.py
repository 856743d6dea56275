"""Command line: ``python -m backtrader_live.sim --exchange binance --port 8765``.

Serves in speed mode (market time runs ``--speed`` times the wall clock; the
default 60 plays a 1h bar per minute) until SIGINT or SIGTERM.  Step mode is
for tests, which drive the clock through the Python API.
"""
import argparse
import signal
import sys
import threading

from . import SIMULATORS
from .server import DEFAULT_API_KEY, DEFAULT_API_SECRET


def parse_balance(text):
    asset, sep, amount = text.partition('=')
    if not sep:
        raise argparse.ArgumentTypeError('balances are written ASSET=AMOUNT, got %r' % text)
    return asset.upper(), float(amount)


def build_parser():
    p = argparse.ArgumentParser(prog='python -m backtrader_live.sim',
                                description='Serve a local exchange simulator.')
    p.add_argument('--exchange', required=True,
                   help='exchange protocol to serve; one of: %s' % ', '.join(sorted(SIMULATORS)))
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=0, help='0 picks a free port')
    p.add_argument('--data', help='candle file (.json or .json.gz); default: packaged data')
    p.add_argument('--speed', type=float, default=60.0,
                   help='market seconds per real second (default 60)')
    p.add_argument('--start-index', type=int, default=500)
    p.add_argument('--api-key', default=DEFAULT_API_KEY)
    p.add_argument('--api-secret', default=DEFAULT_API_SECRET)
    p.add_argument('--balance', type=parse_balance, action='append', default=None,
                   metavar='ASSET=AMOUNT', help='starting balance (repeatable)')
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    cls = SIMULATORS.get(args.exchange.lower())
    if cls is None:
        print('unknown --exchange %r; accepted values: %s'
              % (args.exchange, ', '.join(sorted(SIMULATORS))), file=sys.stderr)
        return 2
    if args.speed <= 0:
        print('--speed must be positive (step mode is for tests only)', file=sys.stderr)
        return 2
    balances = dict(args.balance) if args.balance else None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sim = cls(data=args.data, start_index=args.start_index, speed=args.speed,
              host=args.host, port=args.port, api_key=args.api_key,
              api_secret=args.api_secret, balances=balances)
    with sim:
        print('backtrader_live.sim %s serving on %s (ws %s)'
              % (args.exchange, sim.base_url, sim.ws_url), flush=True)
        while not stop.wait(0.2):
            pass
    print('backtrader_live.sim stopped', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
