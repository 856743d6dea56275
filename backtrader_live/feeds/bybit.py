"""Bybit feed: closed klines (``confirm: true``) from the public stream."""
from ..feed import DataBase


class BybitData(DataBase):
    """Live Bybit candles (no 8h or 3d interval: Bybit does not serve them)."""
