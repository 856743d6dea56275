"""One ccxt client per thread for a store.

A ccxt client is not thread-safe (one requests.Session, ``last_response_*``
and other per-call state), and a store is called from several threads:
Cerebro's (orders, cancels, reconciles) and the stream threads (listenKey
create and keep-alive, clock resync). A lock around calls would make an order
wait behind a keep-alive hanging on a slow answer, so each thread gets its
own client instead. The thread that creates the store uses the first one; any
other thread gets a client of its own on first use, which shares the first
one's options (one clock offset for all), markets (loaded once) and rate
bucket (the exchange counts all our calls together).
"""
import threading

# What ccxt's set_markets fills in: shared by reference (read-only once loaded).
_MARKET_ATTRS = ('markets', 'markets_by_id', 'symbols', 'ids', 'currencies',
                 'currencies_by_id', 'codes', 'baseCurrencies', 'quoteCurrencies')


def share_markets(source, target):
    """Give ``target`` the markets ``source`` loaded (no copy, no reload)."""
    for name in _MARKET_ATTRS:
        if hasattr(source, name):
            setattr(target, name, getattr(source, name))


class ThreadClients:
    """The first client (its creator thread's) and one more per other thread.

    ``make()`` builds a configured client (URLs, proxy, credentials); the
    clients it makes for other threads are then tied to the first one.
    """

    def __init__(self, make):
        self._make = make
        self.first = make()
        self._owner = threading.get_ident()
        self._local = threading.local()

    def get(self):
        """This thread's client."""
        if threading.get_ident() == self._owner:
            return self.first
        client = getattr(self._local, 'client', None)
        if client is None:
            client = self._local.client = self._tied(self._make())
        if self.first.markets is not None and client.markets is not self.first.markets:
            share_markets(self.first, client)   # loaded since (by the first client)
        return client

    def _tied(self, client):
        first = self.first
        client.options = first.options
        client.rate_bucket = first.rate_bucket
        client.logger = first.logger
        client.verbose = first.verbose      # logged and redacted: see ratelimit.py
        return client
