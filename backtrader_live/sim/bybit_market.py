"""Bybit v5 public market data beyond klines: tickers, order book, recent trades,
funding history and mark/index price klines (REST), and the shapes the public
WebSocket topics ``tickers``, ``orderbook`` and ``publicTrade`` share with them.

Everything is derived from the candle file and the matching engine, so a
client sees one consistent market:

- the order book is the engine's synthetic book (best bid = price rounded
  down to the tick, best ask one tick above, ``depth_qty`` per level, one tick
  apart): what a taker order would walk;
- the public trade tape is a documented synthetic path: each bar prints four
  trades, at its open and at 1/4, 1/2 and 3/4 of its span, priced on the
  intrabar path, each a quarter of the bar's volume (on the market's step);
- 24 h statistics come from the bars of the last 24 h (the forming one pro
  rata); the mark and index prices are the market price (as in
  :mod:`.derivatives`).
"""
from decimal import ROUND_HALF_UP

from .bybit_shapes import BYBIT_INTERVALS, BybitError
from .models import ZERO, dec, fmt, to_step

HOUR, DAY = 3600000, 86400000
PRINTS_PER_BAR = 4
#: GET /v5/market/orderbook ``limit``: (max, default) per category
BOOK_LIMITS = {'spot': (200, 1), 'linear': (500, 25), 'inverse': (500, 25)}
#: orderbook.<depth>.<symbol> depths the public streams serve
WS_DEPTHS = ('1', '50', '200', '1000')
#: GET /v5/market/recent-trade ``limit``: (max, default)
TRADE_LIMITS = {'spot': (60, 60), 'linear': (1000, 500), 'inverse': (1000, 500)}


def last_price(sim, cat, symbol):
    """The market price on the tick grid (between the synthetic bid and ask)."""
    rules = sim.category_markets(cat)[symbol]
    return max(to_step(sim.market_price(cat, symbol), rules.tick, ROUND_HALF_UP), rules.tick)


def _volume(rules, coins, price):
    """Bar volume in the market's own unit: coins, or USD contracts (inverse)."""
    if rules.inverse:
        return coins * price / float(rules.contract_size)
    return coins


def _turnover(rules, coins, price):
    """Traded value in the other unit: quote (spot, linear) or coins (inverse)."""
    return coins if rules.inverse else coins * price


def day_stats(sim, cat, symbol):
    """{prev24h, prev1h, high, low, volume, turnover} over the last 24 h of bars."""
    feed, now = sim.feed_of(cat, symbol), sim.clock.now
    rules = sim.category_markets(cat)[symbol]
    rows, _ = feed.bars(feed.interval, now, start=now - DAY)
    price = sim.market_price(cat, symbol)
    high = max([r[2] for r in rows] or [price])
    low = min([r[3] for r in rows] or [price])
    volume = sum(_volume(rules, r[5], (r[1] + r[4]) / 2) for r in rows)
    turnover = sum(_turnover(rules, r[5], (r[1] + r[4]) / 2) for r in rows)
    return {'prev24h': feed.price(now - DAY), 'prev1h': feed.price(now - HOUR),
            'high': high, 'low': low, 'volume': volume, 'turnover': turnover}


def _px(rules, value):
    return fmt(max(to_step(value, rules.tick, ROUND_HALF_UP), rules.tick))


def open_interest(engine, symbol):
    """Contracts held long over every account (= held short, on a real venue)."""
    return sum((acct.positions[symbol].size for acct in engine.accounts.values()
                if symbol in acct.positions and acct.positions[symbol].size > 0), ZERO)


def ticker(sim, cat, symbol):
    """One GET /v5/market/tickers item (also the ``tickers`` stream's snapshot)."""
    engine = sim.category_engine(cat)
    rules = sim.category_markets(cat)[symbol]
    last = last_price(sim, cat, symbol)
    bid, ask = engine.best(symbol)
    qty = fmt(engine.level_qty(symbol))
    st = day_stats(sim, cat, symbol)
    prev = dec(_px(rules, st['prev24h']))
    out = {'symbol': symbol, 'bid1Price': fmt(bid), 'bid1Size': qty, 'ask1Price': fmt(ask),
           'ask1Size': qty, 'lastPrice': fmt(last), 'prevPrice24h': fmt(prev),
           'price24hPcnt': fmt((last - prev) / prev if prev else ZERO, 6),
           'highPrice24h': _px(rules, st['high']), 'lowPrice24h': _px(rules, st['low']),
           'turnover24h': fmt(st['turnover']), 'volume24h': fmt(st['volume'])}
    if cat == 'spot':
        out['usdIndexPrice'] = fmt(last)
        return out
    oi = open_interest(engine, symbol)
    nxt = (sim.clock.now // engine.funding_ms + 1) * engine.funding_ms
    out.update({'indexPrice': fmt(last), 'markPrice': fmt(last),
                'prevPrice1h': _px(rules, st['prev1h']), 'openInterest': fmt(oi),
                'openInterestValue': fmt(engine.notional(rules, oi, last)),
                'fundingRate': fmt(engine.funding_rate_of(symbol)),
                'nextFundingTime': str(nxt), 'predictedDeliveryPrice': '', 'basisRate': '',
                'deliveryFeeRate': '', 'deliveryTime': '0', 'basis': '', 'preOpenPrice': '',
                'preQty': '', 'curPreListingPhase': '',
                'fundingIntervalHour': str(engine.funding_ms // HOUR), 'fundingCap': '0.00375',
                'tickDirection': 'ZeroPlusTick'})
    return out


def book(sim, cat, symbol, depth):
    """{'b': [[price, qty]...], 'a': [...]} of the synthetic book, best first."""
    engine = sim.category_engine(cat)
    rules = sim.category_markets(cat)[symbol]
    bid, ask = engine.best(symbol)
    qty = fmt(engine.level_qty(symbol))
    bids = [bid - k * rules.tick for k in range(depth)]
    return {'b': [[fmt(p), qty] for p in bids if p > ZERO],
            'a': [[fmt(ask + k * rules.tick), qty] for k in range(depth)]}


def prints(sim, cat, symbol, after, until, limit=None):
    """Synthetic public trades with time in (after, until], oldest first."""
    feed = sim.feed_of(cat, symbol)
    rules = sim.category_markets(cat)[symbol]
    n = feed.visible_count(until)
    out, i = [], n - 1
    while i >= 0 and (limit is None or len(out) < limit):
        start, end = feed.times[i], feed.ends[i]
        if end <= after:
            break
        for k in reversed(range(PRINTS_PER_BAR)):
            at = start + (end - start) * k // PRINTS_PER_BAR
            if after < at <= until:
                out.append(_print(feed, rules, symbol, i, k, at))
        i -= 1
    out.sort(key=lambda t: t['seq'])
    return out[-limit:] if limit else out


def _print(feed, rules, symbol, i, k, at):
    price = feed.path_price(i, at)
    before = feed.path_price(i, at - 1) if k else feed.rows[i - 1][4] if i else price
    qty = to_step(_volume(rules, feed.rows[i][5], price) / PRINTS_PER_BAR, rules.step)
    return {'seq': i * PRINTS_PER_BAR + k + 1, 'time': at, 'symbol': symbol,
            'price': _px(rules, price), 'size': fmt(max(qty, rules.min_qty)),
            'side': 'Buy' if price >= before else 'Sell',
            'tick': 'PlusTick' if price > before else 'MinusTick' if price < before
            else 'ZeroPlusTick'}


def trade_item(p):
    """GET /v5/market/recent-trade ``list[]`` item."""
    return {'execId': str(p['seq']), 'symbol': p['symbol'], 'price': p['price'],
            'size': p['size'], 'side': p['side'], 'time': str(p['time']),
            'isBlockTrade': False, 'isRPITrade': False, 'seq': str(p['seq'])}


def ws_trade(p, cat):
    """A ``publicTrade`` stream item."""
    item = {'T': p['time'], 's': p['symbol'], 'S': p['side'], 'v': p['size'],
            'p': p['price'], 'i': str(p['seq']), 'BT': False, 'RPI': False,
            'seq': p['seq']}
    if cat != 'spot':
        item['L'] = p['tick']   # the tick direction: derivatives only
    return item


def _limit(params, limits):
    hi, default = limits
    raw = params.get('limit')
    try:
        value = int(raw) if raw not in (None, '') else default
    except ValueError:
        raise BybitError(10001, 'params error: limit must be an integer 1..%d' % hi) from None
    if not 1 <= value <= hi:
        raise BybitError(10001, 'params error: limit must be in 1..%d' % hi)
    return value


class BybitMarketRest:
    """The public market-data handlers; ``rest`` is the owning BybitRest."""

    def __init__(self, rest):
        self.rest = rest
        self.sim = rest.sim

    def add_routes(self, app):
        for path, handler in (
                ('market/tickers', self.tickers), ('market/orderbook', self.orderbook),
                ('market/recent-trade', self.recent_trade),
                ('market/funding/history', self.funding_history),
                ('market/mark-price-kline', self.price_kline),
                ('market/index-price-kline', self.price_kline),
                ('market/premium-index-price-kline', self.premium_kline)):
            app.router.add_get('/v5/' + path, handler)

    async def tickers(self, request):
        params = dict(request.query)
        cat = self.rest.category(params, ('spot', 'linear', 'inverse', 'option'))
        if cat == 'option':  # no option markets here: an empty list, as for a quiet coin
            return self.rest.reply({'category': cat, 'list': []})
        symbol = self.rest.market(params, cat, required=False)
        names = [symbol] if symbol else list(self.sim.category_markets(cat))
        return self.rest.reply({'category': cat,
                                'list': [ticker(self.sim, cat, s) for s in names]})

    async def orderbook(self, request):
        params = dict(request.query)
        cat = self.rest.category(params)
        symbol = self.rest.market(params, cat)
        depth = _limit(params, BOOK_LIMITS[cat])
        now = self.sim.clock.now
        return self.rest.reply(dict(book(self.sim, cat, symbol, depth), s=symbol, ts=now,
                                    u=now, seq=now, cts=now))

    async def recent_trade(self, request):
        params = dict(request.query)
        cat = self.rest.category(params)
        symbol = self.rest.market(params, cat)
        limit = _limit(params, TRADE_LIMITS[cat])
        items = prints(self.sim, cat, symbol, -1, self.sim.clock.now, limit)
        return self.rest.reply({'category': cat,
                                'list': [trade_item(p) for p in reversed(items)]})

    async def funding_history(self, request):
        """Settled funding of the feed's past 8 h boundaries, newest first."""
        params = dict(request.query)
        cat = self.rest.category(params, ('linear', 'inverse'))
        symbol = self.rest.market(params, cat)
        engine = self.sim.contracts
        period = engine.funding_ms
        limit = _limit(params, (200, 200))
        end = int(params.get('endTime') or self.sim.clock.now)
        start = int(params.get('startTime') or 0)
        first = self.sim.feed_of(cat, symbol).times[0]
        t, out = min(end, self.sim.clock.now) // period * period, []
        while t >= max(start, first) and len(out) < limit:
            out.append({'symbol': symbol, 'fundingRate': fmt(engine.funding_rate_of(symbol)),
                        'fundingRateTimestamp': str(t)})
            t -= period
        return self.rest.reply({'category': cat, 'list': out})

    async def price_kline(self, request):
        """Mark and index price klines: the market price, so the trade klines'
        [start, open, high, low, close] without volume and turnover."""
        return await self._kline(request, ('linear', 'inverse'))

    async def premium_kline(self, request):
        """Premium index klines: mark = index here, so a flat zero premium."""
        params = dict(request.query)
        rows = await self._kline_rows(params, ('linear',))
        return self.rest.reply({'category': params['category'], 'symbol': params['symbol'],
                                'list': [[r[0], '0', '0', '0', '0'] for r in rows]})

    async def _kline(self, request, cats):
        params = dict(request.query)
        rows = await self._kline_rows(params, cats)
        return self.rest.reply({'category': params['category'], 'symbol': params['symbol'],
                                'list': [r[:5] for r in rows]})

    async def _kline_rows(self, params, cats):
        cat = self.rest.category(params, cats)
        symbol = self.rest.market(params, cat)
        if params.get('interval') not in BYBIT_INTERVALS:
            raise BybitError(10001, 'params error: Invalid interval')
        return self.rest.kline_rows(params, cat, symbol)
