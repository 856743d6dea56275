"""Bybit broker: spot, linear and inverse on the generic live broker."""
from ..derivatives import DerivativesBroker


class BybitBroker(DerivativesBroker):
    """Broker for Bybit; paper trading by default (``paper_trading=True``)."""
