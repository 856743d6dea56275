"""Command line: ``python -m backtrader_live.sim --exchange binance --port 8765``.

Serves in speed mode (market time runs ``--speed`` times the wall clock; the
default 60 plays a 1h bar per minute) until SIGINT or SIGTERM.  Step mode is
for tests, which drive the clock through the Python API.

``--fault SPEC`` (repeatable) injects faults (docs/faults.md), e.g.
``--fault rest:call=create_order,action=accept_then_reset,times=3``,
``--fault drop_ws:channel=private,seconds=5,at=60`` (60 s after start),
``--fault ws_drop_all,at=30`` (a preset), ``--fault clock_offset:ms=30000``.
"""
import argparse
import signal
import sys
import threading
import time

from . import SIMULATORS
from .faults import apply_spec, parse_spec
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
    p.add_argument('--fault', type=fault_spec, action='append', default=[], metavar='SPEC',
                   help='inject a fault: METHOD:key=value,...[,at=SECONDS] or a preset '
                        'name (repeatable; see docs/faults.md)')
    p.add_argument('--seed', type=int, default=0, help='seed of the random faults')
    return p


def fault_spec(text):
    """A --fault value checked at parse time (clear errors before serving)."""
    name, _, rest = text.partition(',')
    if ':' not in name and rest:          # a preset with options: 'ws_drop_all,at=30'
        text = name + ':' + rest
    try:
        return parse_spec(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run_faults(sim, planned, elapsed):
    """Apply the planned faults that are due; returns those still waiting."""
    waiting = []
    for method, kwargs, at in planned:
        if at > elapsed:
            waiting.append((method, kwargs, at))
            continue
        try:
            apply_spec(sim.faults, method, kwargs)
        except (TypeError, ValueError, NotImplementedError) as err:
            print('fault %s %s not injected: %s' % (method, kwargs, err), file=sys.stderr,
                  flush=True)
        else:
            print('fault injected: %s %s' % (method, kwargs), flush=True)
    return waiting


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
              api_secret=args.api_secret, balances=balances, seed=args.seed)
    with sim:
        print('backtrader_live.sim %s serving on %s (ws %s)'
              % (args.exchange, sim.base_url, sim.ws_url), flush=True)
        planned, started = list(args.fault), time.monotonic()
        while True:
            planned = run_faults(sim, planned, time.monotonic() - started)
            if stop.wait(0.2):
                break
    print('backtrader_live.sim stopped', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
