"""Binance book and ticker streams: ``@bookTicker``, ``@ticker``, ``@miniTicker``,
``@depth`` (diffs), ``@depth<5|10|20>`` (partial books), on every venue.

Payloads follow Binance's per-venue shapes: futures events carry ``e``, ``E``
(event time) and ``T`` (transaction time), COIN-M adds the pair ``ps``; the spot
partial book is ``{lastUpdateId, bids, asks}`` while the futures one is a
``depthUpdate``.  Update ids are market time in ms, like the REST snapshot's
``lastUpdateId``: one clock move from ``before`` to ``now`` is one diff
``U = before + 1`` (futures: ``U = before``, ``pu = before``) .. ``u = now``,
so a client that syncs a REST snapshot with the diff stream the documented way
ends with exactly the simulator's book.
"""
from .binance_market import book_at, book_levels, ticker_24h, ticker_event
from .models import fmt

DIFF_LEVELS = 1000  # levels per side a diff keeps in sync (the REST maximum)


class MarketStreams:
    """Builds the book and ticker stream messages of one simulator."""

    def __init__(self, sim):
        self.sim = sim

    def feed(self, venue, symbol):
        rules = self.sim.venue_markets(venue)[symbol]
        return self.sim.clock.feeds[getattr(rules, 'feed', None) or symbol]

    def messages(self, venue, symbol, kind, before, now):
        """The messages of one stream for a clock move from ``before`` to ``now``."""
        base = kind.partition('@')[0]
        engine = self.sim.venue_engine(venue)
        if base == 'bookTicker':
            return [self.book_ticker(venue, engine, symbol, now)]
        if base in ('ticker', 'miniTicker'):
            rules = engine.markets[symbol]
            ticker = ticker_24h(venue, engine, self.feed(venue, symbol), symbol, now,
                                getattr(rules, 'contract_size', None))
            return [self._pair(venue, symbol, ticker_event(venue, ticker, now,
                                                           mini=base == 'miniTicker'))]
        if base == 'depth':
            return [self.diff(venue, engine, symbol, before, now)]
        return [self.partial(venue, engine, symbol, int(base[len('depth'):]), before, now)]

    @staticmethod
    def _pair(venue, symbol, event):
        if venue == 'dapi':
            event['ps'] = symbol.split('_')[0]
        return event

    def book_ticker(self, venue, engine, symbol, now):
        bid, ask = engine.best(symbol)
        qty = fmt(engine.level_qty(symbol))
        event = {'u': now, 's': symbol, 'b': fmt(bid), 'B': qty, 'a': fmt(ask), 'A': qty}
        if venue != 'spot':
            event = dict({'e': 'bookTicker'}, **event)
            event.update({'E': now, 'T': now})
        return self._pair(venue, symbol, event)

    def diff(self, venue, engine, symbol, before, now):
        """A depthUpdate taking the book at ``before`` to the book at ``now``."""
        old_bids, old_asks = book_at(engine, symbol, self.feed(venue, symbol).price(before),
                                     DIFF_LEVELS)
        bids, asks = book_levels(engine, symbol, DIFF_LEVELS)
        # the whole window, not only what changed: every synthetic level holds the same
        # quantity, so a client that kept fewer levels (ccxt.pro keeps ``limit``) could
        # never learn the levels that stayed; quantities are absolute, resending is safe
        event = {'e': 'depthUpdate', 'E': now, 's': symbol,
                 'U': before + (0 if venue != 'spot' else 1), 'u': now,
                 'b': bids + [[p, fmt(0)] for p in sorted(old_bids - {b[0] for b in bids})],
                 'a': asks + [[p, fmt(0)] for p in sorted(old_asks - {a[0] for a in asks})]}
        if venue != 'spot':
            event.update({'T': now, 'pu': before})
        return self._pair(venue, symbol, event)

    def partial(self, venue, engine, symbol, levels, before, now):
        bids, asks = book_levels(engine, symbol, levels)
        if venue == 'spot':
            return {'lastUpdateId': now, 'bids': bids, 'asks': asks}
        return self._pair(venue, symbol, {'e': 'depthUpdate', 'E': now, 'T': now, 's': symbol,
                                          'U': before, 'u': now, 'pu': before,
                                          'b': bids, 'a': asks})
