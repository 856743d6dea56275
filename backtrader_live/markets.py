"""Market types: the names users may say, and the three kinds we trade.

The seed speaks of ``spot``, ``futures`` and ``delivery``; the exchanges and
ccxt say ``linear``/``swap``/``inverse``. Every name maps to one of three
kinds, and each exchange declares which kinds it serves (as data).
"""
from .errors import ConfigError

SPOT, LINEAR, INVERSE = 'spot', 'linear', 'inverse'

# user's name -> kind. 'delivery' is the seed's COIN-M: inverse contracts.
ALIASES = {
    'spot': SPOT,
    'futures': LINEAR, 'future': LINEAR, 'linear': LINEAR, 'swap': LINEAR, 'usdm': LINEAR,
    'delivery': INVERSE, 'inverse': INVERSE, 'coinm': INVERSE,
}

EXAMPLE_SYMBOLS = {SPOT: 'BTC/USDT', LINEAR: 'BTC/USDT:USDT', INVERSE: 'BTC/USD:BTC'}


def valid_names(supported, aliases=None):
    return sorted(name for name, kind in (aliases or ALIASES).items() if kind in supported)


def market_kind(market_type, supported, exchange, aliases=None):
    """The kind for ``market_type`` on an exchange serving ``supported``;
    ``aliases``: the exchange's own names (its profile), else ALIASES."""
    aliases = aliases or ALIASES
    kind = aliases.get(market_type.lower()) if isinstance(market_type, str) else None
    if kind not in supported:
        raise ConfigError('unknown market_type %r for %s; valid: %s' % (
            market_type, exchange, ', '.join(valid_names(supported, aliases))))
    return kind


def kind_of(market):
    """The kind of a ccxt market dict."""
    if market.get('spot'):
        return SPOT
    return INVERSE if market.get('inverse') else LINEAR


def symbol_hint(symbol, kind, exchange, market_type, known):
    """A clear message for a symbol that is not a market of this kind."""
    example = EXAMPLE_SYMBOLS[kind]
    looks = INVERSE if ':' in symbol and symbol.split(':')[1] == symbol.split('/')[0] else (
        LINEAR if ':' in symbol else SPOT)
    why = ''
    if looks != kind:
        why = ' (%r looks like a %s symbol; %s symbols look like %r)' % (
            symbol, looks, kind, example)
    return 'unknown symbol %r on %s %s%s; e.g. %s' % (
        symbol, exchange, market_type, why, ', '.join(sorted(known)[:10]))
