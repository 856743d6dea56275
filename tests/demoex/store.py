"""Demoex's store, broker and feed: Binance's protocol code under another name."""
from backtrader_live.derivatives import DerivativesBroker
from backtrader_live.feed import DataBase
from backtrader_live.stores.binance import BinanceStore

from .profile import PROFILE


class DemoexBroker(DerivativesBroker):
    """Demoex broker (spot only, by its profile)."""


class DemoexData(DataBase):
    """Demoex candles."""


class DemoexStore(BinanceStore):
    """Demoex: Binance's spot protocol (parsers and login inherited)."""

    profile = PROFILE
    BrokerCls = DemoexBroker
    DataCls = DemoexData
