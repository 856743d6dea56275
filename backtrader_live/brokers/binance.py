"""Binance broker: spot, USDⓈ-M and COIN-M futures on the generic live broker."""
from ..derivatives import DerivativesBroker


class BinanceBroker(DerivativesBroker):
    """Broker for Binance; paper trading by default (``paper_trading=True``)."""
