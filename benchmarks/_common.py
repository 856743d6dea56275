"""Shared plumbing of the benchmark scripts (not a benchmark itself).

- ``machine()``: what the numbers were measured on (CPU, Python, packages, load).
- ``wait_for_quiet()``: wait (bounded) until the 1-minute load average is low.
- ``stats()``: p50/p95/p99 of a list of seconds, in milliseconds.
- ``emit()``: the one JSON object a benchmark prints on stdout.
- ``SimProcess``: a BinanceSimulator in a child process (step or speed mode),
  driven over a pipe, with wall-clock stamps of every closed kline it writes
  and of every order request it serves (instrumented *inside the child only*;
  the package is not modified).
- ``synthetic_candles()``: a seeded, realistic random walk of OHLCV rows.

Stamps are ``time.perf_counter()``: CLOCK_MONOTONIC on Linux, the same clock in
every process of the machine, so a stamp taken in the simulator's process
can be subtracted from one taken in the trading process.
"""
import gc
import json
import logging
import math
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def note(msg, *args):
    """A human note: stderr only (stdout is the JSON result)."""
    sys.stderr.write(('[%s] ' % time.strftime('%H:%M:%S')) + (msg % args if args else msg) + '\n')
    sys.stderr.flush()


# -- the machine --------------------------------------------------------------------------
def loadavg():
    with open('/proc/loadavg') as fh:
        return [float(x) for x in fh.read().split()[:3]]


def cpu_model():
    try:
        with open('/proc/cpuinfo') as fh:
            for line in fh:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def _version(dist):
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:
        return None


def git_rev():
    try:
        rev = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'],
                             capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(['git', '-C', ROOT, 'status', '--porcelain', '--',
                                'backtrader_live'], capture_output=True, text=True,
                               timeout=5).stdout.strip()
        return rev + ('+dirty' if dirty else '') if rev else None
    except Exception:
        return None


def machine():
    import backtrader_live
    return {
        'nproc': os.cpu_count(),
        'cpu_model': cpu_model(),
        'platform': platform.platform(),
        'python': platform.python_version(),
        'packages': {d: _version(d) for d in ('backtrader', 'ccxt', 'aiohttp',
                                               'websocket-client', 'requests', 'urllib3')},
        'backtrader_live': {'version': backtrader_live.__version__, 'git': git_rev(),
                            'path': os.path.dirname(backtrader_live.__file__)},
        'loadavg_start': loadavg(),
    }


def wait_for_quiet(max_load=0.7, max_wait=600.0, poll=30.0):
    """Wait until the 1-minute load average is under ``max_load`` (bounded).

    Returns (load when measuring starts, seconds waited, reached?)."""
    t0 = time.monotonic()
    while True:
        load = loadavg()[0]
        if load < max_load:
            return load, time.monotonic() - t0, True
        waited = time.monotonic() - t0
        if waited >= max_wait:
            note('load %.2f still >= %.2f after %.0fs: measuring anyway', load, max_load, waited)
            return load, waited, False
        note('load %.2f >= %.2f: waiting %.0fs (%.0fs waited)', load, max_load, poll, waited)
        time.sleep(poll)


def add_common_args(parser, quiet_wait=600.0):
    parser.add_argument('--quick', action='store_true', help='a short run (smoke test)')
    parser.add_argument('--max-load', type=float, default=0.7,
                        help='wait for the 1-min load average to drop under this')
    parser.add_argument('--max-wait', type=float, default=quiet_wait,
                        help='seconds to wait for a quiet machine at most (0: do not wait)')
    return parser


# -- statistics -------------------------------------------------------------------------
def percentile(sorted_values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_values[int(k)]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def stats(seconds, scale=1000.0, digits=4):
    """n, mean, min, p50, p95, p99, max of ``seconds`` (in ms by default)."""
    vals = sorted(v * scale for v in seconds if v is not None)
    if not vals:
        return {'n': 0}
    r = lambda v: round(v, digits)  # noqa: E731
    return {'n': len(vals), 'mean': r(statistics.fmean(vals)), 'min': r(vals[0]),
            'p50': r(percentile(vals, 0.50)), 'p95': r(percentile(vals, 0.95)),
            'p99': r(percentile(vals, 0.99)), 'max': r(vals[-1])}


def emit(result):
    """Print the result as one JSON object on stdout."""
    result.setdefault('loadavg_end', loadavg())
    sys.stdout.write(json.dumps(result, indent=1, sort_keys=False, default=str) + '\n')
    sys.stdout.flush()


def quiet_logs(level=logging.WARNING):
    logging.basicConfig(level=level, stream=sys.stderr,
                        format='%(levelname)s %(name)s: %(message)s')
    for name in ('backtrader_live', 'ccxt', 'urllib3', 'websocket', 'aiohttp'):
        logging.getLogger(name).setLevel(level)


def rss_kb(pid='self'):
    with open('/proc/%s/status' % pid) as fh:
        for line in fh:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return None


def proc_cpu_seconds():
    """CPU seconds of this process, all threads (CLOCK_PROCESS_CPUTIME_ID, ns
    resolution; /proc's utime/stime only count 10 ms ticks)."""
    return time.process_time()


class GcPauses:
    """Durations of this process's garbage collections (gc.callbacks)."""

    def __init__(self):
        self.pauses = []        # (generation, seconds)
        self._t0 = None
        gc.callbacks.append(self._cb)

    def _cb(self, phase, info):
        if phase == 'start':
            self._t0 = time.perf_counter()
        elif self._t0 is not None:
            self.pauses.append((info.get('generation'), time.perf_counter() - self._t0))

    def take(self):
        out, self.pauses = self.pauses, []
        return out

    def summary(self, pauses=None):
        pauses = self.take() if pauses is None else pauses
        by_gen = {}
        for g, dt in pauses:
            by_gen.setdefault(g, []).append(dt)
        return {'gen%s' % g: {'count': len(v), 'max_ms': round(1000 * max(v), 3),
                              'total_ms': round(1000 * sum(v), 3)} for g, v in by_gen.items()}


# -- synthetic candles --------------------------------------------------------------------
def synthetic_candles(n, tf_ms=60000, start_ms=1_577_836_800_000, price=30000.0,
                      vol_per_bar=0.0008, seed=7):
    """``n`` OHLCV rows ``[t, o, h, l, c, v]``: a seeded geometric random walk
    with volatility clustering (GARCH-like) and intrabar extremes; prices >0."""
    rng = random.Random(seed)
    rows, t, c, sigma = [], start_ms, price, vol_per_bar
    for _ in range(n):
        sigma = max(0.2 * vol_per_bar, min(5 * vol_per_bar,
                    0.97 * sigma + 0.03 * vol_per_bar * (1 + 3 * abs(rng.gauss(0, 1)))))
        o = c
        c = o * math.exp(rng.gauss(0, sigma))
        h = max(o, c) * math.exp(abs(rng.gauss(0, sigma * 0.6)))
        l = min(o, c) * math.exp(-abs(rng.gauss(0, sigma * 0.6)))
        v = round(rng.lognormvariate(2.0, 0.8), 5)
        rows.append([t, round(o, 2), round(h, 2), round(l, 2), round(c, 2), v])
        t += tf_ms
    return rows


def write_candles(rows, path):
    with open(path, 'w') as fh:
        json.dump(rows, fh)
    return path


# -- the simulator in a child process ------------------------------------------------------
def _child_main(conn, kwargs):
    """Run a BinanceSimulator; stamp closed klines and order requests (child only)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from urllib.parse import parse_qs

    from aiohttp import web
    from backtrader_live.sim import BinanceSimulator
    from backtrader_live.sim import binance as sim_binance

    kline_stamps = []   # (perf_counter before the write, text)
    order_stamps = []   # (client id, t_in, t_out) of POST /api/v3/order
    send_str = web.WebSocketResponse.send_str

    async def stamped_send_str(self, data, *args, **kwargs):
        if '"x":true' in data:
            kline_stamps.append((time.perf_counter(), data))
        return await send_str(self, data, *args, **kwargs)

    web.WebSocketResponse.send_str = stamped_send_str

    post_order = sim_binance.BinanceRest.post_order

    async def stamped_post_order(self, request):
        t_in = time.perf_counter()
        try:
            return await post_order(self, request)
        finally:
            t_out = time.perf_counter()
            cid = request.rel_url.query.get('newClientOrderId')
            if cid is None:
                try:
                    body = await request.text()     # cached by aiohttp: no new read
                    cid = parse_qs(body).get('newClientOrderId', [None])[0]
                except Exception:
                    cid = None
            order_stamps.append((cid, t_in, t_out))

    sim_binance.BinanceRest.post_order = stamped_post_order
    # the routes are bound when the app is built (start), after the patch
    sim = BinanceSimulator(**kwargs)
    sim.start()
    gc_pauses = GcPauses()
    conn.send(('ready', sim.base_url, os.getpid()))
    try:
        while True:
            cmd, args = conn.recv()
            try:
                if cmd == 'stop':
                    break
                elif cmd == 'step':
                    t = time.perf_counter()
                    rows = sim.step(*args)
                    conn.send(('ok', (len(rows), time.perf_counter() - t)))
                elif cmd == 'advance':
                    sim.advance(*args)
                    conn.send(('ok', None))
                elif cmd == 'steps':      # n steps at most ``rate`` per second
                    n, rate = args
                    gap = 1.0 / rate if rate else 0.0
                    t0 = time.perf_counter()
                    for i in range(n):
                        if gap:
                            delay = t0 + i * gap - time.perf_counter()
                            if delay > 0:
                                time.sleep(delay)
                        sim.step()
                    conn.send(('ok', time.perf_counter() - t0))
                elif cmd == 'kline_stamps':
                    out = []
                    for t, text in kline_stamps:
                        msg = json.loads(text)
                        k = (msg.get('data') or msg)['k']
                        out.append((k['s'], k['t'], t))
                    kline_stamps.clear()
                    conn.send(('ok', out))
                elif cmd == 'order_stamps':
                    conn.send(('ok', list(order_stamps)))
                    order_stamps.clear()
                elif cmd == 'wait_subscribed':
                    conn.send(('ok', sim.wait_subscribed(*args)))
                elif cmd == 'wait_user_subscribed':
                    conn.send(('ok', sim.wait_user_subscribed(timeout=args[0])))
                elif cmd == 'gc_pauses':
                    conn.send(('ok', gc_pauses.summary()))
                elif cmd == 'cpu':
                    conn.send(('ok', proc_cpu_seconds()))
                elif cmd == 'gc':
                    gc.collect()
                    conn.send(('ok', None))
                else:
                    conn.send(('error', 'unknown command %r' % cmd))
            except Exception as exc:   # reported to the parent
                conn.send(('error', repr(exc)))
    finally:
        sim.stop()
        conn.send(('stopped', None))


class SimProcess:
    """A BinanceSimulator in a child process (``multiprocessing`` spawn).

    ``kwargs`` go to ``BinanceSimulator``. Methods block until the child answered.
    """

    def __init__(self, **kwargs):
        ctx = multiprocessing.get_context('spawn')
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, args=(child, kwargs),
                                 name='bench-sim', daemon=True)
        self._lock = threading.Lock()
        self.base_url = None
        self.pid = None

    def start(self, timeout=60):
        self._proc.start()
        if not self._conn.poll(timeout):
            raise RuntimeError('simulator process did not start')
        tag, self.base_url, self.pid = self._conn.recv()
        return self

    def _cmd(self, cmd, *args, timeout=120):
        with self._lock:
            self._conn.send((cmd, args))
            if not self._conn.poll(timeout):
                raise TimeoutError('simulator command %s timed out' % cmd)
            tag, value = self._conn.recv()
        if tag == 'error':
            raise RuntimeError('simulator: %s' % value)
        return value

    def step(self, bars=1, timeout=5):
        return self._cmd('step', bars, timeout)

    def advance(self, seconds):
        return self._cmd('advance', seconds)

    def steps(self, n, rate=None):
        return self._cmd('steps', n, rate, timeout=600)

    def kline_stamps(self):
        """[(symbol id, open time ms, perf_counter at write)] since the last call."""
        return self._cmd('kline_stamps')

    def order_stamps(self):
        """[(client id, perf_counter in, perf_counter out)] of order requests."""
        return self._cmd('order_stamps')

    def wait_subscribed(self, stream, count=1, timeout=10):
        return self._cmd('wait_subscribed', stream, count, timeout)

    def wait_user_subscribed(self, timeout=10):
        return self._cmd('wait_user_subscribed', timeout)

    def cpu_seconds(self):
        return self._cmd('cpu')

    def gc_pauses(self):
        """Garbage collections in the simulator process since the last call."""
        return self._cmd('gc_pauses')

    def stop(self):
        if self._proc.is_alive():
            try:
                self._conn.send(('stop', ()))
                self._conn.poll(10)
            except (OSError, EOFError):
                pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def eventually(cond, timeout=10.0, interval=0.0005):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError('condition not met within %.1fs' % timeout)
        time.sleep(interval)


def step_each_bar(sim, rec, bars, gap, failed=lambda: None):
    """Close ``bars`` bars one at a time (``gap`` idle seconds before each),
    each waited for until the strategy's next() counted it (``rec.count``,
    ``rec.event``); ``failed()``: the run's error, if any (ends the wait)."""
    for _ in range(bars):
        rec.event.clear()
        n = rec.count
        if gap:
            time.sleep(gap)
        sim.step()
        while rec.count <= n:
            if failed() is not None or not rec.event.wait(10):
                raise RuntimeError('a bar did not reach next(): %r' % (failed(),))
            rec.event.clear()


class LiveThread:
    """``cerebro.run_live(...)`` in a worker thread (like tests/livekit.py)."""

    def __init__(self, cerebro, *args, **kwargs):
        self.cerebro, self.args, self.kwargs = cerebro, args, kwargs
        self.error = self.result = None
        self.thread = threading.Thread(target=self._run, name='bench-live-run', daemon=True)

    def _run(self):
        try:
            self.result = self.cerebro.run_live(*self.args, **self.kwargs)
        except BaseException as exc:
            self.error = exc

    def start(self):
        self.thread.start()
        return self

    def alive(self):
        return self.thread.is_alive()

    def join(self, timeout=30):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RuntimeError('the live run did not stop')
        if self.error is not None:
            raise self.error
        return self.result
