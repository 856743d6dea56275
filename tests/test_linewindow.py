"""A live run keeps a recent window of every line (keep_bars): memory stays flat
while indicators, len(self) and a plot of the recent past work as before."""
import array

import backtrader
import pytest

import backtrader_live as btl
from backtrader_live.linewindow import LineWindow
from helpers import KEY, SECRET, load_rows
from livekit import LiveRun
from test_risk_kit import Rows

BARS = 1500


class Watcher(backtrader.Strategy):
    """Indicators of several depths, values read at several distances."""

    def __init__(self):
        self.sma = backtrader.ind.SMA(period=30)
        self.cross = backtrader.ind.CrossOver(backtrader.ind.SMA(period=10), self.sma)
        self.high = backtrader.ind.Highest(self.data.high, period=60)
        self.atr = backtrader.ind.ATR(period=14)
        self.seen = []

    def next(self):
        self.seen.append((len(self), len(self.data), self.data.close[0], self.data.close[-90],
                          self.sma[0], self.sma[-5], self.cross[0], self.high[0], self.atr[0],
                          tuple(self.data.close.get(size=80))))
        if not self.position and self.cross > 0:
            self.buy(size=0.01)
        elif self.position and self.cross < 0:
            self.close()


def _run(window):
    cerebro = btl.Cerebro()
    cerebro.adddata(Rows(rows=load_rows()[:BARS], timeframe=backtrader.TimeFrame.Minutes,
                         compression=60))
    cerebro.addstrategy(Watcher)
    cerebro.keep_recent_bars(window)
    # bar by bar, as a live run goes (a preloaded backtest never trims)
    return cerebro, cerebro.run(preload=False, runonce=False)[0]


def test_a_trimmed_run_sees_exactly_what_a_full_one_sees():
    _, full = _run(None)
    window = LineWindow(200, every=50)
    cerebro, trimmed = _run(window)
    assert len(full.seen) == len(trimmed.seen) > 1400
    assert trimmed.seen == full.seen
    assert window.dropped > 0
    assert len(trimmed) == len(trimmed.data) == BARS           # len() counts every bar
    for line in (trimmed.data.close, trimmed.sma.lines.sma, trimmed.atr.lines.atr,
                 trimmed.lines.datetime):
        assert len(line.array) <= 200 + 50
        assert line.buflen() == len(line) == BARS
    assert [o.executed.price for o in trimmed._orders] == [o.executed.price for o in full._orders]


def test_a_trimmed_run_still_plots_its_recent_window(tmp_path):
    pytest.importorskip('matplotlib')
    from backtrader_live.plotting import save_plot
    cerebro, _ = _run(LineWindow(300, every=100))
    path = save_plot(cerebro, str(tmp_path / 'recent.png'))
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


@pytest.mark.parametrize('bad', [0, 99, -1, 1.5, '2000', True])
def test_keep_bars_must_be_a_sensible_number(bad):
    with pytest.raises(btl.ConfigError, match=r'keep_bars must be an integer >= 100 .* or None'):
        btl.Cerebro().run_live('binance', 'BTC/USDT', '1h', btl.Strategy, keep_bars=bad)


def test_run_live_trims_by_default(sim):
    """At run_live's defaults a window is kept; here a small one, to see it."""
    run = LiveRun(sim, backfill_bars=150, max_bars=8, keep_bars=100, paper_trading=True,
                  apikey=KEY, secret=SECRET)
    cerebro = run.cerebro
    run.start().step(8)
    run.join()
    strategy = run.rec.strategy
    assert len(strategy.data) == 150 + 8 and len(strategy.data.close.array) <= 110
    assert cerebro._line_window is None            # a later run() is a plain backtest
    assert '_next_writers' not in vars(cerebro)
    default = btl.Cerebro.run_live.__kwdefaults__['keep_bars']
    assert default == 20000


def test_guard_upstream_linebuffer_internals():
    """LineWindow relies on these (backtrader 1.9.78.123): array, idx, extension,
    mode, lencount behind len(), buflen() = len(array) - extension, and
    Cerebro calling _next_writers once per bar after the strategies."""
    from backtrader.linebuffer import LineBuffer
    buf = LineBuffer()
    assert buf.mode == LineBuffer.UnBounded and isinstance(buf.array, array.array)
    for value in range(10):
        buf.forward()
        buf[0] = float(value)
    del buf.array[:4]
    buf.idx = buf.idx - 4
    buf.extension -= 4
    assert len(buf) == 10 and buf.buflen() == 10
    assert buf[0] == 9.0 and buf[-5] == 4.0 and buf.get(size=3) == array.array('d', [7, 8, 9])
    calls = []

    class Counting(btl.Cerebro):
        def _next_writers(self, runstrats):
            calls.append(len(runstrats[0]))
            super()._next_writers(runstrats)
    cerebro = Counting()
    cerebro.adddata(Rows(rows=load_rows()[:50], timeframe=backtrader.TimeFrame.Minutes,
                         compression=60))
    cerebro.addstrategy(backtrader.Strategy)
    cerebro.run(preload=False, runonce=False)
    assert calls == list(range(1, 51))
