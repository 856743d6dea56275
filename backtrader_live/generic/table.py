"""The exchange table of docs/exchanges.md, from the same data the stores use.

    python -m backtrader_live.generic.table    # prints the Markdown table

A test compares the page with this output, so the page cannot drift from
what ccxt (and profile.py) say.
"""
import ccxt

from . import profile

NATIVE = ('binance', 'bybit')       # exchanges with a module in backtrader_live.stores
_STREAMS = (('watchOHLCV', 'bars'), ('watchOrders', 'orders'), ('watchMyTrades', 'fills'),
            ('watchBalance', 'balance'), ('watchPositions', 'positions'))


def row(ccxt_id):
    info = profile.describe(ccxt_id)
    has = info['has']
    kinds = ', '.join(k for k in profile.market_types(ccxt_id)) or '-'
    streamed = [name for cap, name in _STREAMS if profile.has_stream(ccxt_id, cap)]
    polled = [name for cap, name in _STREAMS if name not in streamed and (
        cap != 'watchPositions' or has.get('swap'))]
    tier = 'native (generic: `ccxt:%s`)' % ccxt_id if ccxt_id in NATIVE else 'generic'
    return '| %s | %s | %s | %s | %s | %s | %s | %s |' % (
        ccxt_id, tier, kinds, ', '.join(streamed) or '-', ', '.join(polled) or '-',
        'yes' if profile.supports_client_ids(ccxt_id) else '**no**',
        'yes' if profile.needs_password(ccxt_id) else '-',
        'yes' if info['sandbox'] else '-')


def markdown():
    head = ('| exchange | tier | market types | streamed (ccxt.pro) | polled over REST | '
            'client order ids | passphrase | testnet |\n|---|---|---|---|---|---|---|---|')
    return '\n'.join([head] + [row(e) for e in ccxt.exchanges])


if __name__ == '__main__':     # pragma: no cover - a printing entry point
    print(markdown())
