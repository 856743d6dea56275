"""Binance feed: closed klines (``k.x``) from the market stream, REST backfill."""
from ..feed import DataBase


class BinanceData(DataBase):
    """Live Binance candles. Build with ``BinanceData.from_timeframe_string``
    or ``store.getdata(dataname='BTC/USDT', tf='1h', ...)``."""
