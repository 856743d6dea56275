"""Binance public market data beyond klines, for spot, USD-M and COIN-M.

Where Binance has an endpoint the simulator answers it from the same candles
the clock replays, in Binance's shapes (the venues' differences are data in
:data:`SHAPES`):

* the book is the engine's synthetic one (best bid = price on the tick grid,
  best ask one tick above, ``depth_qty`` per level, one tick apart);
  ``lastUpdateId`` is the market time in ms, so REST snapshots and the diff
  streams of :mod:`.binance_ws` agree (each clock move is one diff event);
* public trades are one print per minute of market time: the close and the
  volume of that minute's slice of the candle path (:func:`.candles.slice_bar`),
  trade id = minute number, so ``trades``, ``historicalTrades`` and
  ``aggTrades`` page consistently by id and time;
* 24 h statistics come from the last 24 h of candles (the forming one as seen
  now); the premium index and funding history from the derivative engine.
"""
from decimal import ROUND_DOWN

from . import candles as cd
from .binance import ApiError, checked_symbol
from .models import fmt

TRADE_MS = 60000          # one synthetic public trade per minute of market time
DAY_MS = 86400000
DEPTH_LIMITS = {'spot': None, 'fapi': (5, 10, 20, 50, 100, 500, 1000),
                'dapi': (5, 10, 20, 50, 100, 500, 1000)}
#: venue -> what differs in the shapes (COIN-M answers arrays for tickers even for
#: one symbol and adds the pair)
SHAPES = {
    'spot': dict(prefix='/api/v3', array_for_one=False, pair=False),
    'fapi': dict(prefix='/fapi/v1', array_for_one=False, pair=False),
    'dapi': dict(prefix='/dapi/v1', array_for_one=True, pair=True),
}


def pair_of(symbol):
    return symbol.split('_')[0]


# -- pure builders (REST and streams) -------------------------------------------------------
def book_levels(engine, symbol, limit):
    """(bids, asks) of the synthetic book, best first, as [price, qty] strings."""
    bid, ask = engine.best(symbol)
    tick, qty = engine.markets[symbol].tick, fmt(engine.level_qty(symbol))
    levels = range(min(limit, 1000))
    return ([[fmt(bid - k * tick), qty] for k in levels if bid - k * tick > 0],
            [[fmt(ask + k * tick), qty] for k in levels])


def book_at(engine, symbol, price, limit):
    """(bid prices, ask prices) of the book when the price was ``price``."""
    rules = engine.markets[symbol]
    bid = rules.price(price, ROUND_DOWN)
    return {fmt(bid - k * rules.tick) for k in range(limit) if bid - k * rules.tick > 0}, \
        {fmt(bid + (k + 1) * rules.tick) for k in range(limit)}


def public_trades(feed, now, first_id=None, start=None, end=None, limit=500):
    """Synthetic public trades (see the module doc), oldest first: forward from
    ``first_id`` or ``start``, else the newest up to ``end``/now."""
    lo, hi = feed.times[0] // TRADE_MS + 1, now // TRADE_MS  # printed by now
    if end is not None:
        hi = min(hi, int(end) // TRADE_MS)
    if first_id is not None or start is not None:
        first = int(first_id) if first_id is not None else -(-(int(start) + 1) // TRADE_MS)
        ids = range(max(first, lo), hi + 1)
    else:
        ids = range(hi, lo - 1, -1)
    out = []
    for tid in ids:
        trade = _trade(feed, tid)
        if trade is not None:
            out.append(trade)
            if len(out) >= limit:
                break
    return out if first_id is not None or start is not None else out[::-1]


def _trade(feed, tid):
    t_end = tid * TRADE_MS
    i = feed.index_at(t_end - 1)
    if i is None:
        return None
    row, end = feed.rows[i], feed.ends[i]
    a = max(t_end - TRADE_MS, row[0])
    part = cd.slice_bar(row, end, a, min(t_end, end))
    qty = part[cd.V] if part[cd.V] > 0 else 1e-8
    return {'id': tid, 'price': part[cd.C], 'qty': qty, 'time': t_end - 1,
            'isBuyerMaker': part[cd.C] < part[cd.O]}


def contracts(t, size):
    """COIN-M counts a trade in contracts of ``size`` USD (at least one)."""
    return '%d' % max(1, int(t['qty'] * t['price'] / float(size)))


def trade_json(t, venue, size=None):
    """A public trade; COIN-M's ``qty`` is contracts and ``baseQty`` the coins."""
    out = {'id': t['id'], 'price': '%.8f' % t['price'], 'qty': '%.8f' % t['qty'],
           'quoteQty': '%.8f' % (t['price'] * t['qty']), 'time': t['time'],
           'isBuyerMaker': t['isBuyerMaker']}
    if venue == 'spot':
        out['isBestMatch'] = True
    elif venue == 'dapi':
        del out['quoteQty']
        out.update(qty=contracts(t, size), baseQty='%.8f' % t['qty'])
    return out


def agg_json(t, size=None):
    return {'a': t['id'], 'p': '%.8f' % t['price'],
            'q': contracts(t, size) if size else '%.8f' % t['qty'], 'f': t['id'],
            'l': t['id'], 'T': t['time'], 'm': t['isBuyerMaker'], 'M': True}


def day_stats(feed, now, last):
    """Open/high/low/volume/quote volume/count over the 24 h before ``now``."""
    rows, _ = feed.bars(feed.interval, now, start=now - DAY_MS)
    first = rows[0][cd.O] if rows else last
    vol = sum(r[cd.V] for r in rows)
    quote = sum(r[cd.V] * (r[cd.O] + r[cd.C]) / 2 for r in rows)
    return {'open': first, 'high': max((r[cd.H] for r in rows), default=last),
            'low': min((r[cd.L] for r in rows), default=last), 'volume': vol,
            'quote': quote, 'last': last}


def ticker_24h(venue, engine, feed, symbol, now, contract_size=None):
    """GET ticker/24hr for one symbol (spot adds book and previous close)."""
    last = float(engine.price_of(symbol)) if venue != 'spot' else feed.price(now)
    s = day_stats(feed, now, last)
    first_id = (now - DAY_MS) // TRADE_MS + 1
    out = {'symbol': symbol, 'priceChange': fmt(last - s['open']),
           'priceChangePercent': '%.3f' % ((last - s['open']) / s['open'] * 100
                                           if s['open'] else 0),
           'weightedAvgPrice': fmt(s['quote'] / s['volume'] if s['volume'] else last),
           'lastPrice': fmt(last), 'lastQty': '0.00100000', 'openPrice': fmt(s['open']),
           'highPrice': fmt(s['high']), 'lowPrice': fmt(s['low']),
           'volume': fmt(s['volume']), 'quoteVolume': fmt(s['quote']),
           'openTime': now - DAY_MS, 'closeTime': now, 'firstId': first_id,
           'lastId': now // TRADE_MS, 'count': now // TRADE_MS - first_id + 1}
    if venue == 'spot':
        bid, ask = engine.best(symbol)
        qty = fmt(engine.level_qty(symbol))
        out.update({'prevClosePrice': fmt(s['open']), 'bidPrice': fmt(bid), 'bidQty': qty,
                    'askPrice': fmt(ask), 'askQty': qty})
    elif venue == 'dapi':  # COIN-M volume counts contracts, baseVolume the coins
        size = contract_size or 1
        out.update({'pair': pair_of(symbol), 'baseVolume': fmt(s['volume']),
                    'volume': fmt(int(s['quote'] / float(size)))})
        del out['quoteVolume']
    return out


def ticker_event(venue, ticker, now, mini=False):
    """@ticker / @miniTicker stream payload from a ticker_24h dict."""
    if mini:
        return {'e': '24hrMiniTicker', 'E': now, 's': ticker['symbol'],
                'c': ticker['lastPrice'], 'o': ticker['openPrice'], 'h': ticker['highPrice'],
                'l': ticker['lowPrice'], 'v': ticker['volume'],
                'q': ticker.get('quoteVolume', ticker.get('baseVolume'))}
    out = {'e': '24hrTicker', 'E': now, 's': ticker['symbol'], 'p': ticker['priceChange'],
           'P': ticker['priceChangePercent'], 'w': ticker['weightedAvgPrice'],
           'c': ticker['lastPrice'], 'Q': ticker['lastQty'], 'o': ticker['openPrice'],
           'h': ticker['highPrice'], 'l': ticker['lowPrice'], 'v': ticker['volume'],
           'q': ticker.get('quoteVolume', ticker.get('baseVolume')),
           'O': ticker['openTime'], 'C': ticker['closeTime'], 'F': ticker['firstId'],
           'L': ticker['lastId'], 'n': ticker['count']}
    if venue == 'spot':
        out.update({'x': ticker['prevClosePrice'], 'b': ticker['bidPrice'],
                    'B': ticker['bidQty'], 'a': ticker['askPrice'], 'A': ticker['askQty']})
    elif venue == 'dapi':
        out['ps'] = ticker['pair']
    return out


class MarketData:
    """The extra public endpoints of one venue ('spot', 'fapi' or 'dapi')."""

    def __init__(self, sim, venue):
        self.sim, self.venue, self.shape = sim, venue, SHAPES[venue]

    @property
    def engine(self):
        return self.sim.venue_engine(self.venue)

    def feed(self, symbol):
        rules = self.engine.markets[symbol]
        return self.sim.clock.feeds[getattr(rules, 'feed', None) or symbol]

    def size(self, symbol):
        """COIN-M's contract size (USD per contract); None where trades count coins."""
        return self.engine.markets[symbol].contract_size if self.venue == 'dapi' else None

    def add_routes(self, app):
        p, r = self.shape['prefix'], app.router
        routes = {'trades': self.trades, 'historicalTrades': self.historical_trades,
                  'aggTrades': self.agg_trades}
        if self.venue == 'spot':
            routes['avgPrice'] = self.avg_price
            r.add_post(p + '/order/test', self.sim.rest.test_order)
        else:
            routes.update({'depth': self.depth, 'ticker/24hr': self.ticker_24hr,
                           'fundingRate': self.funding_rate})
        for path, handler in routes.items():
            r.add_get('%s/%s' % (p, path), handler)

    def reply(self, data, weight=1):
        return self.sim.rest.reply(data, weight=weight)

    def symbol(self, params, required=True):
        return checked_symbol(params, self.engine.markets, required)

    def many(self, symbol, items):
        """One object for one symbol, an array otherwise (COIN-M: always an array)."""
        return items[0] if symbol and not self.shape['array_for_one'] else items

    # -- handlers -----------------------------------------------------------------------
    async def avg_price(self, request):
        symbol = self.symbol(dict(request.query))
        now = self.sim.clock.now
        rows, _ = self.feed(symbol).bars('1m', now, limit=5)
        vol = sum(r[cd.V] for r in rows)
        price = (sum(r[cd.V] * r[cd.C] for r in rows) / vol if vol
                 else self.sim.current_price(symbol))
        return self.reply({'mins': 5, 'price': fmt(price), 'closeTime': now - 1}, weight=2)

    def _limit(self, params, default, maximum):
        limit = int(params.get('limit') or default)
        if limit < 1:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'limit'; "
                                       "legal range is '1 - %d'." % maximum)
        return min(limit, maximum)

    async def trades(self, request):
        params = dict(request.query)
        symbol = self.symbol(params)
        limit = self._limit(params, 500, 1000)
        out = public_trades(self.feed(symbol), self.sim.clock.now, limit=limit)
        return self.reply([trade_json(t, self.venue, self.size(symbol)) for t in out],
                          weight=5)

    async def historical_trades(self, request):
        params = dict(request.query)
        symbol = self.symbol(params)
        if self.venue == 'spot' or request.headers.get('X-MBX-APIKEY'):
            limit = self._limit(params, 500, 1000)
            out = public_trades(self.feed(symbol), self.sim.clock.now,
                                first_id=params.get('fromId'), limit=limit)
            return self.reply([trade_json(t, self.venue, self.size(symbol)) for t in out],
                              weight=20)
        raise ApiError(401, -2014, 'API-key format invalid.')

    async def agg_trades(self, request):
        params = dict(request.query)
        symbol = self.symbol(params)
        limit = self._limit(params, 500, 1000)
        start, end = params.get('startTime'), params.get('endTime')
        if start and end and int(end) - int(start) > 3600000:
            raise ApiError(400, -1127, 'More than 1 hours between startTime and endTime.')
        out = public_trades(self.feed(symbol), self.sim.clock.now,
                            first_id=params.get('fromId'), start=start, end=end, limit=limit)
        return self.reply([agg_json(t, self.size(symbol)) for t in out], weight=2)

    async def depth(self, request):
        params = dict(request.query)
        symbol = self.symbol(params)
        limit = int(params.get('limit') or 500)
        allowed = DEPTH_LIMITS[self.venue]
        if allowed and limit not in allowed:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'limit'; "
                                       "legal range is '%s'." % ', '.join(map(str, allowed)))
        bids, asks = book_levels(self.engine, symbol, limit)
        now = self.sim.clock.now
        out = {'lastUpdateId': now, 'E': now, 'T': now, 'bids': bids, 'asks': asks}
        if self.shape['pair']:
            out.update({'symbol': symbol, 'pair': pair_of(symbol)})
        return self.reply(out, weight=5 if limit <= 100 else 10)

    def ticker(self, symbol):
        rules = self.engine.markets[symbol]
        return ticker_24h(self.venue, self.engine, self.feed(symbol), symbol,
                          self.sim.clock.now, getattr(rules, 'contract_size', None))

    async def ticker_24hr(self, request):
        symbol = self.symbol(dict(request.query), required=False)
        items = [self.ticker(s) for s in ([symbol] if symbol else self.engine.markets)]
        return self.reply(self.many(symbol, items), weight=1 if symbol else 40)

    async def funding_rate(self, request):
        params = dict(request.query)
        symbol = self.symbol(params, required=self.venue == 'dapi')
        limit = self._limit(params, 100, 1000)
        engine, now = self.engine, self.sim.clock.now
        start, end = params.get('startTime'), params.get('endTime')
        stop = min(now, int(end)) if end else now
        times = []
        t = stop // engine.funding_ms * engine.funding_ms
        first = max(int(start) if start else 0, self.feed(symbol or next(iter(
            engine.markets))).times[0])
        while t >= first and len(times) < limit * len(engine.markets):
            times.append(t)
            t -= engine.funding_ms
        times.reverse()
        if start:
            times = times[:limit]
        items = []
        for t in times:
            for s in ([symbol] if symbol else engine.markets):
                items.append({'symbol': s, 'fundingTime': t,
                              'fundingRate': fmt(engine.funding_rate_of(s)),
                              'markPrice': fmt(self.feed(s).price(t))})
        return self.reply(items[:limit] if start else items[-limit:])


def premium_index(engine, symbol, now, venue):
    """One premiumIndex entry (COIN-M adds the pair; the answer is always an array)."""
    mark = fmt(engine.price_of(symbol))
    nxt = (now // engine.funding_ms + 1) * engine.funding_ms
    out = {'symbol': symbol, 'markPrice': mark, 'indexPrice': mark,
           'estimatedSettlePrice': mark, 'lastFundingRate': fmt(engine.funding_rate_of(symbol)),
           'interestRate': '0.00010000', 'nextFundingTime': nxt, 'time': now}
    if venue == 'dapi':
        out['pair'] = pair_of(symbol)
    return out
