"""Parity harness (issue 14 part 3): one strategy, the same candles, three modes.

``run_modes`` runs a corpus strategy as a backtest (btl.Cerebro over the
simulator's own candle rows), as a paper run (``run_live`` with
``paper_trading=True`` on the simulator's market data) and as a live run
(``paper_trading=False`` against the simulator), and records every order
(exec type, side, size, price, the bar it was created on, parent/OCO links)
and every completed fill (bar, size, average price, commission).

``compare`` lines a mode up with the backtest. Every difference must be
explained by one of the named RULES below (the exchange rounds, charges a fee,
fills a market order at its book at arrival); any other difference is a
divergence and is reported as such. The rules are exact bounds taken from
what the simulator documents (docs/simulator.md), not loose tolerances.
"""
import datetime
import gzip
import json
import math

import backtrader as bt

import backtrader_live as btl
from backtrader_live.feeds.rows import CandleRowsFeed
from backtrader_live.sim import candles as cd
from livekit import LiveRun
from venues import VENUES, venue_sim

H = 3600 * 1000
EPOCH = datetime.datetime(1970, 1, 1)
START = 600                 # the simulator's first forming bar (a row of the candles)


# -- what a strategy did ----------------------------------------------------------------
class Log:
    """Orders in creation order and their fills, per run."""

    def __init__(self):
        self.orders = []        # dicts, index = creation order
        self.fills = []         # (order index, bar ms, size, price, comm)
        self.bars = []          # data0 bar open ms of every next()
        self.strategy = None
        self._index = {}        # order ref -> index

    def placed(self, strategy, order, kwargs):
        if order is None:
            return
        links = {}
        for key in ('parent', 'oco'):
            other = kwargs.get(key)
            if other is not None:
                links[key] = self._index[other.ref]
        created = order.created
        self._index[order.ref] = len(self.orders)
        target = getattr(strategy, '_targeting', False)
        self.orders.append(dict(
            side=order.ordtypename(), type=order.getordername(),
            data=strategy.datas.index(order.data), size=created.size,
            price=_num(created.price), bar=bar_ms(strategy.data0), links=links,
            trail=(order.trailamount or None, order.trailpercent or None),
            valid=bool(order.valid), statuses=[],
            target=(strategy.broker.getvalue(), strategy.getposition(order.data).size,
                    order.data.close[0]) if target else None))

    def notified(self, order):
        index = self._index.get(order.ref)
        if index is None:
            return
        self.orders[index]['statuses'].append(order.getstatusname())
        if order.status == order.Completed:
            shift = getattr(order.data.p, 'shift', 0)
            self.fills.append((index, floor_hour(order.executed.dt) - shift,
                               order.executed.size, order.executed.price,
                               order.executed.comm, self.bars[-1] if self.bars else None))


def _num(value):
    return None if value is None else float(value)


def bar_ms(data):
    """The open time of the data's current bar: live feeds stamp a bar at
    its open, a backtest's CandleRowsFeed too unless it resamples (its ``shift``:
    how far after the open the stamp is)."""
    stamp = data.datetime.datetime(0)
    ms = int((stamp - EPOCH).total_seconds() * 1000)
    return ms - getattr(data.p, 'shift', 0)


def floor_hour(num):
    stamp = bt.num2date(num)
    ms = int((stamp - EPOCH).total_seconds() * 1000)
    return ms - ms % H


class Parity(bt.Strategy):
    """The corpus's base: an upstream strategy that logs what it places.

    ``trade(n)`` runs from the first live bar (n = 1): the history bars of a
    live run only warm indicators up, so every mode trades on the same bars.
    """

    params = (('log', None), ('quiet', 0), ('unit', 0.01))

    def __init__(self):
        self.p.log.strategy = self

    def buy(self, *args, **kwargs):
        order = super().buy(*args, **kwargs)
        self.p.log.placed(self, order, kwargs)
        return order

    def sell(self, *args, **kwargs):
        order = super().sell(*args, **kwargs)
        self.p.log.placed(self, order, kwargs)
        return order

    def order_target_percent(self, *args, **kwargs):
        self._targeting = True          # the order is sized from the account's value
        try:
            return super().order_target_percent(*args, **kwargs)
        finally:
            self._targeting = False

    def notify_order(self, order):
        self.p.log.notified(order)

    def prenext(self):
        self.p.log.bars.append(bar_ms(self.data0))

    def next(self):
        if len(self.data0) > self.p.quiet:
            self.trade(len(self.data0) - self.p.quiet)
        # last: a live run's step() waits for this bar, so its orders are placed
        self.p.log.bars.append(bar_ms(self.data0))

    def trade(self, n):
        raise NotImplementedError


# -- the backtest over the simulator's candles ----------------------------------------------
def backtest(strategy, rows_by_symbol, params, cash, resample=None, comminfo=(),
             data_kwargs=None):
    """``comminfo``: the paper run's commission info per data (the market's
    amount step, fee and margin, from the exchange's market table), so that
    sizing (``order_target_percent``) and fees follow the same market rules."""
    log = Log()
    cerebro = btl.Cerebro(stdstats=False)
    for i, rows in enumerate(rows_by_symbol):
        cerebro.adddata(CandleRowsFeed(rows=rows, timeframe=bt.TimeFrame.Minutes, compression=60,
                                   name='data%d' % i, shift=H if resample else 0,
                                   **(data_kwargs or {})))
        if i < len(comminfo):
            cerebro.broker.addcommissioninfo(comminfo[i], name='data%d' % i)
    if resample:
        cerebro.resampledata(cerebro.datas[0], timeframe=bt.TimeFrame.Minutes,
                             compression=resample)
    cerebro.broker.setcash(cash)
    cerebro.addstrategy(strategy, log=log, **params)
    cerebro.run()
    return log


# -- the simulator's markets: three symbols from the real BTC/USDT hours --------------------
# ETH and SOL follow BTC at another price level, each with its own slow wave,
# so that a pair's ratio and a portfolio's weights move.
OTHERS = {'ETH/USDT': (15.0, 0.03, 5.0), 'SOL/USDT': (400.0, 0.05, 7.0)}


def other_rows(divisor, amplitude, period):
    with gzip.open(cd.DEFAULT_DATA['BTC/USDT'], 'rt') as f:
        rows = json.load(f)[:2000]
    out = []
    for i, r in enumerate(rows):
        k = (1 + amplitude * math.sin(i / period)) / divisor
        out.append([r[0]] + [round(v * k, 2) for v in r[1:5]] + [r[5]])
    return out


# A deep book (one price level holds any of the corpus's sizes), so that a market
# order fills at one price: the book walk of a thin book is tested on its own
# (tests/test_order_lifecycle.py, venues.THIN_BOOK); here it would only blur parity.
DEEP_BOOK = {'binance-spot': {'depth_qty': 1e6}, 'binance-usdm': {'futures_depth_qty': 1e6},
             'bybit-linear': {'contract_depth_qty': 1e6}}


def sim_options(venue, tmp_path, symbols):
    options = dict(DEEP_BOOK.get(venue, {}))
    if len(symbols) > 1:
        data = {'BTC/USDT': None}
        for name in symbols[1:]:
            path = tmp_path / ('binance_%s_1h.json' % name.replace('/', ''))
            path.write_text(json.dumps(other_rows(*OTHERS[name])))
            data[name] = str(path)
        options['data'] = data
    return options


def venue_symbol(venue, spot_symbol):
    """'ETH/USDT' on ``venue`` ('ETH/USDT:USDT' on a linear market)."""
    return spot_symbol if VENUES[venue][1] == 'spot' else spot_symbol + ':USDT'


def settle_cash(venue):
    """The account's cash at the simulator's start (what a backtest starts with)."""
    extra = VENUES[venue][6]
    if VENUES[venue][1] == 'spot':
        return extra['balances']['USDT']
    return 10000.0


def served_rows(sim, symbol, first, last):
    feed = sim.clock.feeds[sim.symbols[symbol]]
    return [list(r) for r in feed.rows if first <= r[0] <= last]


# -- one strategy in three modes ------------------------------------------------------------
def session_end(sim, hours):
    """A session that ends ``hours`` after the first live bar opens (the
    simulator dates its candles from the wall clock, so a fixed time of day
    would end the session at a different bar on every run)."""
    first = sim.now_ms() - sim.now_ms() % H
    return (EPOCH + datetime.timedelta(milliseconds=first + hours * H - 1)).time()


def live_mode(venue, strategy, params, steps, symbols, timeframes, backfill, paper, tmp_path,
              session=None):
    exchange, market_type, _, topic, market = VENUES[venue][:5]
    log = Log()
    with venue_sim(venue, **sim_options(venue, tmp_path, symbols)) as sim:
        names = [venue_symbol(venue, s) for s in symbols]
        log.data_kwargs = {'sessionend': session_end(sim, session)} if session else {}
        run = LiveRun(sim, exchange=exchange, market_type=market_type, topic=topic,
                      user_market=market, strategy=strategy,
                      symbol=names if len(names) > 1 else names[0],
                      timeframe=timeframes, backfill_bars=backfill, max_bars=steps,
                      paper_trading=paper, cash=settle_cash(venue),
                      strategy_params=dict(params, log=log), data_kwargs=log.data_kwargs)
        run.rec = log              # LiveRun waits on log.bars and log.strategy's broker
        run.backfill = backfill
        run.start()
        run.step(steps)
        run.join()
        # the rate a paper run charges: the market's fee from ccxt's table
        info = log.strategy.broker.getcommissioninfo(log.strategy.data0)
        log.comminfo = [log.strategy.broker.getcommissioninfo(d)
                        for d in log.strategy.datas[:len(symbols)]]
        log.rules = market_rules(sim, venue) + (float(info.p.commission),)
        # each data's own amount step (SOL trades in whole coins where BTC in 0.001)
        log.steps = [float(ci.p.step) for ci in log.comminfo]
        log.rows = [served_rows(sim, s, log.bars[0], log.bars[-1]) for s in symbols]
    return log


def market_rules(sim, venue):
    """(amount step, price tick, taker fee, maker fee) of BTC on the venue."""
    if VENUES[venue][0] == 'bybit':
        engine = sim.category_engine(VENUES[venue][4])
    else:
        engine = sim.engine if VENUES[venue][4] == 'spot' else sim.deriv_engines['fapi']
    rules = next(r for r in engine.markets.values() if str(r.base) == 'BTC')
    return (float(rules.step), float(rules.tick), float(engine.taker_fee),
            float(engine.maker_fee))


def run_modes(venue, case, tmp_path):
    """{'backtest': Log, 'paper': Log, 'live': Log} of one corpus case."""
    unit = VENUES[venue][5]
    params = dict(case.params, quiet=case.backfill, unit=unit)
    if 'short' in case.strategy.params._getkeys():
        params['short'] = VENUES[venue][1] != 'spot'
    logs = {}
    for mode, paper in (('paper', True), ('live', False)):
        where = tmp_path / mode
        where.mkdir()
        logs[mode] = live_mode(venue, case.strategy, params, case.steps, case.symbols,
                               case.timeframes, case.backfill, paper, where, case.session)
    resample = 240 if '4h' in case.timeframes else None
    logs['backtest'] = backtest(case.strategy, logs['live'].rows, params,
                                settle_cash(venue), resample, logs['paper'].comminfo,
                                logs['paper'].data_kwargs)
    return logs


# -- the comparison: every difference named by a rule ----------------------------------------
RULES = {
    'step': 'the exchange rounds a size to the market amount step (diff <= one step)',
    'tick': "a price is rounded to the market's price tick (diff <= one tick): by the "
            "exchange, and in paper by the order gate with the exchange's market table",
    'spot-fee-in-coin': 'on spot the buy fee is taken in the bought coin, so a size taken '
                        'from the position is the fill less the fee (x (1 - taker fee))',
    'fee': 'paper/live pay a fee (live: the venue maker/taker rate on the exchange\'s filled '
           "size; paper and backtest: the rate the market's commission info holds), each "
           'within one amount step of the booked size (spot sells book sub-step dust)',
    'trail-on-close': 'the live StopTrail is emulated (emulated.py): when a closed bar\'s '
                      'range reaches the trailed stop it is sent at market, filling at the '
                      "next bar's open (within a tick); the backtest fills at the stop inside "
                      'the bar',
    'market-at-arrival': "a live market order fills at once, at the simulator's book when it "
                         "arrives (the creating bar's close: ask = price on the tick + one "
                         "tick, bid = price on the tick); the backtest at the next bar's open. "
                         "Also a live Close order: a market order sent when the session's last "
                         "bar closes, where the backtest takes that bar's close",
    'fill-stamp': "a live fill carries the exchange's trade time: an immediate spot market "
                  "fill (whose answer has no trade time) the creating bar's stamp, one bar "
                  "before the backtest's next-open fill; a resting fill, or a Close order's "
                  "market fill, the instant the bar that filled it closes (one bar after)",
    'target-from-value': 'an order_target_percent size follows the account value it is '
                         'sized from, which fees and fill prices move: the sizes differ by at '
                         'most |value diff| / price + |position diff| + 2 steps',
}


def compare(ref, other, venue, rules):
    """[(what, ours, theirs, rule or None)] for every field that differs;
    rule None: unexplained (a divergence)."""
    step, tick, taker, maker, charged = rules
    spot = VENUES[venue][1] == 'spot'
    if len(ref.orders) != len(other.orders):
        return [('order count', len(other.orders), len(ref.orders), None)]
    out = []
    steps = getattr(other, 'steps', None) or []
    for i, (a, b) in enumerate(zip(ref.orders, other.orders)):
        data_step = steps[a['data']] if a['data'] < len(steps) else step
        out += _order_diffs(i, a, b, data_step, tick, taker, spot)
    fills_a = {f[0]: f for f in ref.fills}
    fills_b = {f[0]: f for f in other.fills}
    if sorted(fills_a) != sorted(fills_b):
        return out + [('fills of orders', sorted(fills_b), sorted(fills_a), None)]
    rows = [{r[0]: r for r in data_rows} for data_rows in (getattr(other, 'rows', None) or [])]
    for index in sorted(fills_a):
        a, b = fills_a[index], fills_b[index]
        order = ref.orders[index]
        kind, what = order['type'], 'fill %d ' % index
        data_step = steps[order['data']] if order['data'] < len(steps) else step
        if a[2] != b[2]:
            out.append((what + 'size', b[2], a[2],
                        _size_rule(a[2], b[2], data_step, taker, spot)
                        or _target_rule(order, other.orders[index], a[2], b[2], data_step)))
        if a[3] != b[3]:
            out.append((what + 'price', b[3], a[3],
                        _price_rule(kind, a, b, tick, rows[order['data']] if rows else {})))
        if a[1] != b[1]:
            out.append((what + 'bar', b[1], a[1], _stamp_rule(kind, a[1], b[1])))
        if a[4] != b[4]:
            out.append((what + 'comm', b[4], a[4], _fee_rule(b, taker, maker, charged, step)))
    return out


def _order_diffs(i, a, b, step, tick, taker, spot):
    out = []
    for key in ('side', 'type', 'data', 'links', 'valid', 'bar', 'trail'):
        if a[key] != b[key]:
            out.append(('order %d %s' % (i, key), b[key], a[key], None))
    if a['size'] != b['size']:
        out.append(('order %d size' % i, b['size'], a['size'],
                    _size_rule(a['size'], b['size'], step, taker, spot)
                    or _target_rule(a, b, a['size'], b['size'], step)))
    if a['price'] != b['price']:
        near = a['price'] and b['price'] and abs(a['price'] - b['price']) <= tick + 1e-9
        out.append(('order %d price' % i, b['price'], a['price'], 'tick' if near else None))
    if a['statuses'][-1:] != b['statuses'][-1:]:
        out.append(('order %d status' % i, b['statuses'][-1:], a['statuses'][-1:], None))
    return out


def _size_rule(ref, got, step, taker, spot):
    if abs(ref - got) <= step + 1e-12:
        return 'step'
    if spot and abs(abs(got) - abs(ref) * (1 - taker)) <= step + 1e-12:
        return 'spot-fee-in-coin'
    return None


def _target_rule(a, b, ref, got, step):
    """order_target_percent (target <= 100 %): size = target x value / price -
    position, so two runs' sizes differ by at most |value diff| / price plus
    the position diff (and a step of rounding each)."""
    if not (a.get('target') and b.get('target')):
        return None
    (va, pa, price), (vb, pb, _) = a['target'], b['target']
    bound = abs(va - vb) / price + abs(pa - pb) + 2 * step
    return 'target-from-value' if abs(ref - got) <= bound + 1e-12 else None


def _fee_rule(b, taker, maker, charged, step):
    # spot buys: the fee was charged on the gross size (the fill before its fee);
    # a spot sell that leaves less than a step of the coin books that dust with
    # the fill (accounts.settle_dust) while the exchange charged its own size
    values = [abs(b[2] * b[3]), abs(b[2] * b[3]) / (1 - taker)]
    ok = any(abs(b[4] - v * r) <= 1e-9 + v * r * 1e-6 + step * abs(b[3]) * r
             for r in (taker, maker, charged) for v in values)
    return 'fee' if ok else None


def _stamp_rule(kind, ref_bar, bar):
    # Market: the spot answer carries no trade time (the creating bar's stamp);
    # Close: the market order sent at the session's last close is stamped at that
    # instant, the next bar's open; resting orders: the close of the filling bar
    shifts = {'Market': (-H,), 'Close': (H,)}.get(kind, (H,))
    return 'fill-stamp' if bar - ref_bar in shifts else None


def _price_rule(kind, a, b, tick, rows):
    if abs(a[3] - b[3]) <= tick + 1e-9:
        return 'tick'
    opens = [rows[t][1] for t in (b[1], b[1] + H) if t in rows]
    if kind == 'StopTrail' and any(abs(b[3] - o) <= tick + 1e-9 for o in opens):
        return 'trail-on-close'
    # the bar whose close the live order met: a market order's creating bar (the
    # backtest fills at the next open), a Close order's session-ending bar
    met = rows.get(a[1] - H if kind == 'Market' else a[1])
    nxt = rows.get(met[0] + H) if met else None
    if kind in ('Market', 'Close') and met and nxt:
        lo, hi = sorted((met[4], nxt[1]))
        if lo - 2 * tick - 1e-9 <= b[3] <= hi + 2 * tick + 1e-9:
            return 'market-at-arrival'
    return None


def verdict(diffs):
    """('orders equal' | 'orders differ', 'fills within rules' | 'fills differ', rules used)."""
    orders = [d for d in diffs if d[0].startswith('order')]
    fills = [d for d in diffs if not d[0].startswith('order')]
    return (all(d[3] for d in orders), all(d[3] for d in fills),
            sorted({d[3] for d in diffs if d[3]}))
