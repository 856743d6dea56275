"""Binance: spot, USDⓈ-M and COIN-M. Data in profile.py; code in backtrader_live.stores.binance."""
