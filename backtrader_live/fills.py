"""A fill applied to backtrader's Position and Trade, exactly in decimals.

backtrader sums sizes as binary floats: long 0.009, sell 0.002 leaves
0.006999999999999999; ``close()`` then sends 0.006 (the step truncates) and
0.001 stays open; a position of 1e-18 is not flat. Here the position after a
fill is the decimal sum of the sizes the exchange sent, on the market's step
for contracts, so flat is 0.0 and ``close()`` sends what the exchange holds.

backtrader's Trade (upstream, built by the strategy from the order's
execution bits) sums the same sizes as floats; :class:`TradeSizes` replays
that sum so the bit that closes a trade makes the float sum land on exactly
zero, and the trade is reported closed.
"""
from .orders import exact_sum, snap


def update_position(position, size, price, step=None):
    """``position.update`` with an exact size. Returns (size, price, opened,
    closed) as upstream's does; ``step``: snap the size to it (contracts)."""
    old = position.size
    position.update(size, price)        # upstream: price and the branches
    new = snap(exact_sum(old, size), step)
    position.size = new
    if not new:
        position.price = 0.0
        return new, position.price, 0.0, size
    if old and (old > 0) != (new > 0):      # reversed: the rest opens
        return new, position.price, new, -old
    if old and (old > 0) == (size > 0) or not old:
        return new, position.price, size, 0.0
    return new, position.price, 0.0, size


class TradeSizes:
    """The float size of each open backtrader Trade, as upstream will sum it
    (per owner, data and tradeid)."""

    def __init__(self):
        self._sizes = {}

    def closing_part(self, order, closed):
        """``closed`` adjusted by float noise only, so that the trade it ends
        sums to exactly 0.0 in upstream's Trade; and record the bit."""
        key = (id(order.owner), id(order.data), order.tradeid)
        size = self._sizes.get(key, 0.0)
        if closed:
            if size and abs(size + closed) <= 1e-9 * abs(closed):
                closed = -size          # the trade's own float: ends at 0.0
            size += closed
        self._sizes[key] = size
        return closed

    def opening_part(self, order, opened):
        key = (id(order.owner), id(order.data), order.tradeid)
        if opened:
            self._sizes[key] = self._sizes.get(key, 0.0) + opened
