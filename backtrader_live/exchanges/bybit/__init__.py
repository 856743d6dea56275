"""Bybit v5: spot, linear and inverse. Data in profile.py; code in backtrader_live.stores.bybit."""
