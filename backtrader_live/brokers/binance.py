"""Binance broker: the generic live broker is enough for spot today.

Exchange-specific order options (futures reduce-only, algo orders) belong
here when they come.
"""
from ..broker import BrokerBase


class BinanceBroker(BrokerBase):
    """Broker for Binance; paper trading by default (``paper_trading=True``)."""
