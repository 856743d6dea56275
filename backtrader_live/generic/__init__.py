"""The generic tier: any exchange ccxt knows (store.py), promises as data (profile.py).

``generic_store('okx')`` (or ``'ccxt:binance'``, which forces this tier where
a native one exists) is the store class ``Cerebro.run_live`` uses for an
exchange without a native store module.
"""
from .profile import PREFIX, exchange_id, is_ccxt_exchange
from .store import GenericBroker, GenericData, GenericStore, generic_store

__all__ = ['PREFIX', 'GenericBroker', 'GenericData', 'GenericStore', 'exchange_id',
           'generic_store', 'is_ccxt_exchange']
