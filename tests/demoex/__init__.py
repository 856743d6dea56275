"""Demoex: an exchange defined outside backtrader_live, registered by name.

A white-label exchange speaking Binance's spot protocol (as several do), so
the existing Binance simulator can stand in for it. It shows what adding an
exchange takes: a profile (profile.py), a store with the protocol code
(store.py: here inherited from Binance), a broker and a feed class, and one
entry point; no backtrader_live file is edited (tests/test_exchange_registry.py).
"""
