#!/usr/bin/env python
"""Reference figures for this machine, without backtrader_live in the path.

1. ``ccxt_minimal_server``: the unmodified ccxt's signed ``create_order`` round
   trip against a minimal local HTTP server (raw asyncio protocol in another
   process, TCP_NODELAY, headers and body in one write, a canned Binance FULL
   order answer). The floor for any order path that uses ccxt on loopback.
2. ``ccxt_split_writes_no_nodelay``: the same server writing headers and body in
   two small segments without TCP_NODELAY: the classic delayed-ACK stall
   (~40 ms per request) that a server must avoid.
3. ``backtrader_queue_to_next``: plain backtrader's live loop (a minimal live
   feed whose ``_load`` waits on a ``queue.Queue``, ``Cerebro.run`` with
   ``quicknotify``): from ``queue.put(bar)`` in another thread to the strategy's
   ``next()``. The floor for any bar path built on backtrader.

Each is measured back to back (the next sample right after the last: caches
and CPU warm) and paced (``--gap`` idle seconds in between, as in the paced
runs of the other benchmarks). On this VM an idle pause costs a lot: a thread
or process woken from idle runs slower for a while (wake-up IPIs, cold caches,
frequency), so the paced figures are the fair comparison for paced runs.

    python benchmarks/bench_baselines.py [--quick] [-n 2000]
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import queue
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

ORDER_BODY = json.dumps({
    'symbol': 'BTCUSDT', 'orderId': 1, 'orderListId': -1, 'clientOrderId': 'x',
    'transactTime': 1700000000000, 'price': '0.00000000', 'origQty': '0.01000000',
    'executedQty': '0.01000000', 'cummulativeQuoteQty': '450.00000000',
    'status': 'FILLED', 'timeInForce': 'GTC', 'type': 'MARKET', 'side': 'BUY',
    'workingTime': 1700000000000, 'selfTradePreventionMode': 'EXPIRE_MAKER',
    'fills': [{'price': '45000.00', 'qty': '0.01000000', 'commission': '0.00001000',
               'commissionAsset': 'BTC', 'tradeId': 1}]}, separators=(',', ':')).encode()


def _server(port_conn, nodelay, split):
    """A minimal keep-alive HTTP/1.1 server answering every request with ORDER_BODY."""

    class Proto(asyncio.Protocol):
        def connection_made(self, transport):
            self.t = transport
            self.buf = b''
            sock = transport.get_extra_info('socket')
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if nodelay else 0)

        def data_received(self, data):
            self.buf += data
            while True:
                head_end = self.buf.find(b'\r\n\r\n')
                if head_end < 0:
                    return
                head = self.buf[:head_end].decode('latin-1')
                length = 0
                for line in head.split('\r\n')[1:]:
                    k, _, v = line.partition(':')
                    if k.strip().lower() == 'content-length':
                        length = int(v)
                if len(self.buf) < head_end + 4 + length:
                    return
                self.buf = self.buf[head_end + 4 + length:]
                body = ORDER_BODY
                headers = (b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'
                           b'Content-Length: %d\r\n\r\n' % len(body))
                if split:
                    self.t.write(headers)
                    self.t.write(body)      # two small segments
                else:
                    self.t.write(headers + body)

    async def main():
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(Proto, '127.0.0.1', 0)
        port_conn.send(srv.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def _ccxt_client(port, n, gap):
    import ccxt
    ex = ccxt.binance({'apiKey': 'k', 'secret': 's', 'enableRateLimit': False,
                       'options': {'fetchCurrencies': False, 'fetchMargins': False}})
    base = 'http://127.0.0.1:%d' % port
    for k in list(ex.urls['api']):
        if isinstance(ex.urls['api'][k], str):
            ex.urls['api'][k] = base + '/' + ex.urls['api'][k].split('/', 3)[3]
    # a minimal market so create_order needs no load_markets round trip
    ex.markets = None
    ex.set_markets([{
        'id': 'BTCUSDT', 'symbol': 'BTC/USDT', 'base': 'BTC', 'quote': 'USDT',
        'baseId': 'BTC', 'quoteId': 'USDT', 'type': 'spot', 'spot': True, 'margin': False,
        'swap': False, 'future': False, 'option': False, 'contract': False, 'active': True,
        'linear': None, 'inverse': None, 'settle': None, 'settleId': None,
        'precision': {'amount': 0.00001, 'price': 0.01}, 'limits': {
            'amount': {'min': 0.00001, 'max': 9000}, 'price': {'min': 0.01, 'max': 1e6},
            'cost': {'min': 5, 'max': None}},
        'info': {'symbol': 'BTCUSDT', 'orderTypes': ['LIMIT', 'MARKET'],
                 'filters': [], 'permissions': ['SPOT']}}])
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        ex.create_order('BTC/USDT', 'market', 'buy', 0.01)
        times.append(time.perf_counter() - t0)
        if gap:
            time.sleep(gap)
    return times


def ccxt_round_trip(n, nodelay=True, split=False, gap=0.0):
    ctx = multiprocessing.get_context('spawn')
    a, b = ctx.Pipe()
    proc = ctx.Process(target=_server, args=(b, nodelay, split), daemon=True)
    proc.start()
    try:
        port = a.recv()
        times = _ccxt_client(port, n, gap)
    finally:
        proc.terminate()
        proc.join(5)
    warm = min(20, n // 10)
    return C.stats(times[warm:])


def backtrader_queue_to_next(n, gap):
    """Plain backtrader: queue.put(bar) -> next(), with a minimal live feed."""
    import backtrader as bt

    q = queue.Queue()
    seen = []
    done = threading.Event()

    class QueueFeed(bt.feed.DataBase):
        def islive(self):
            return True

        def haslivedata(self):
            return not q.empty()

        def _load(self):
            try:
                item = q.get(timeout=self._qcheck or 0.5)
            except queue.Empty:
                return None
            if item is None:
                return False
            t_put, dt, px = item
            self._t_put = t_put
            lines = self.lines
            lines.datetime[0] = dt
            lines.open[0] = lines.high[0] = lines.low[0] = lines.close[0] = px
            lines.volume[0] = 1.0
            return True

    class Rec(bt.Strategy):
        def next(self):
            seen.append(time.perf_counter() - self.data._t_put)
            done.set()

    cerebro = bt.Cerebro(stdstats=False, quicknotify=True, exactbars=1)
    cerebro.adddata(QueueFeed())
    cerebro.addstrategy(Rec)
    th = threading.Thread(target=cerebro.run, daemon=True)
    th.start()
    d0 = bt.date2num(__import__('datetime').datetime(2024, 1, 1))
    for i in range(n):
        done.clear()
        q.put((time.perf_counter(), d0 + i / 1440.0, 100.0 + i % 7))
        done.wait(5)
        if gap:
            time.sleep(gap)
    q.put(None)
    th.join(10)
    warm = min(20, n // 10)
    return C.stats(seen[warm:])


def main(argv=None):
    p = C.add_common_args(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    p.add_argument('-n', type=int, default=2000, help='samples per figure')
    p.add_argument('--gap', type=float, default=0.02,
                   help='idle seconds between samples in the paced runs')
    args = p.parse_args(argv)
    n = 200 if args.quick else args.n
    load, waited, _ = C.wait_for_quiet(args.max_load, 0 if args.quick else args.max_wait)
    result = {'benchmark': 'baselines', 'quick': args.quick, 'machine': C.machine(),
              'load_at_start': load, 'waited_for_quiet_s': waited}
    paced_n = max(100, n // 4)
    C.note('ccxt vs a minimal server: %d orders back to back, %d paced %.0f ms apart', n,
           paced_n, args.gap * 1000)
    result['ccxt_minimal_server_ms'] = {
        'back_to_back': ccxt_round_trip(n),
        'paced': ccxt_round_trip(paced_n, gap=args.gap)}
    C.note('ccxt vs a server with split writes and no TCP_NODELAY (%d orders)', min(n, 100))
    result['ccxt_split_writes_no_nodelay_ms'] = ccxt_round_trip(min(n, 100), nodelay=False,
                                                                split=True)
    C.note('plain backtrader: queued bar -> next(): %d back to back, %d paced', n, paced_n)
    result['backtrader_queue_to_next_ms'] = {
        'back_to_back': backtrader_queue_to_next(n, 0.0),
        'paced': backtrader_queue_to_next(paced_n, args.gap)}
    result['paced_gap_ms'] = args.gap * 1000
    result['summary'] = {
        'ccxt_minimal_server_p50_p99_ms': {
            k: (v['p50'], v['p99']) for k, v in result['ccxt_minimal_server_ms'].items()},
        'split_writes_no_nodelay_p50_ms': result['ccxt_split_writes_no_nodelay_ms']['p50'],
        'backtrader_queue_to_next_p50_p99_ms': {
            k: (v['p50'], v['p99']) for k, v in result['backtrader_queue_to_next_ms'].items()}}
    C.emit(result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
