"""save_plot writes a real PNG headless, and says clearly when it cannot."""
import sys

import pytest

import backtrader_live as bt
from backtrader_live.plotting import save_plot
from helpers import load_rows
from test_risk_kit import Rows


class Cross(bt.Strategy):
    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=5), bt.ind.SMA(period=15))

    def next(self):
        if not self.position and self.cross > 0:
            self.buy(size=0.1)
        elif self.position and self.cross < 0:
            self.close()


def _cerebro(rows, **run_kwargs):
    cerebro = bt.Cerebro()
    cerebro.adddata(Rows(rows=rows, timeframe=bt.TimeFrame.Minutes, compression=60))
    cerebro.addstrategy(Cross)
    cerebro.run(**run_kwargs)
    return cerebro


def test_a_png_of_a_real_run(tmp_path):
    path = tmp_path / 'sub' / 'run.png'
    assert save_plot(_cerebro(load_rows()[:300]), str(path), width=8, height=5) == str(path)
    data = path.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 20_000


def test_clear_errors_when_there_is_nothing_to_plot(tmp_path):
    with pytest.raises(ValueError, match='call cerebro.run'):
        save_plot(bt.Cerebro(), str(tmp_path / 'x.png'))
    with pytest.raises(ValueError, match='exactbars > 0'):
        save_plot(_cerebro(load_rows()[:100], exactbars=1), str(tmp_path / 'x.png'))


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    # Simulates an install without the "plot" extra: the import must fail
    # with the command that fixes it (matplotlib itself is installed here).
    monkeypatch.setitem(sys.modules, 'matplotlib', None)
    with pytest.raises(ImportError, match=r'backtrader-live\[plot\]'):
        save_plot(_cerebro(load_rows()[:50]), str(tmp_path / 'x.png'))
