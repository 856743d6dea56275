"""A backtest feed over candle rows already in memory.

Rows are ``[open time ms, open, high, low, close, volume]`` as ccxt's
``fetch_ohlcv``, the simulator's candle files and the journal give them. The
CLI's ``backtest`` uses it, and so do the tests and benchmarks that compare a
live run with a backtest over the same candles.

The class name must stay unique among DataBase subclasses: backtrader
registers each one's lines class under a name built from the class names, and
a second class of the same name replaces the first (pickling, as an
optimisation's worker processes do, then fails).
"""
import datetime

import backtrader as bt

EPOCH = datetime.datetime(1970, 1, 1)


class CandleRowsFeed(bt.feed.DataBase):
    """Candle rows stamped at their open time, as the live feeds stamp bars;
    ``shift`` (ms) moves every stamp, e.g. one interval to stamp at the close,
    backtrader's own convention, which its resampledata needs."""

    params = (('rows', ()), ('shift', 0))

    def start(self):
        super().start()
        self._i = 0

    def _load(self):
        if self._i >= len(self.p.rows):
            return False
        ms, o, h, low, c, v = self.p.rows[self._i][:6]
        self._i += 1
        stamp = EPOCH + datetime.timedelta(milliseconds=ms + self.p.shift)
        self.lines.datetime[0] = bt.date2num(stamp)
        for line, value in zip((self.lines.open, self.lines.high, self.lines.low,
                                self.lines.close, self.lines.volume), (o, h, low, c, v)):
            line[0] = float(value or 0.0)
        self.lines.openinterest[0] = 0.0
        return True
