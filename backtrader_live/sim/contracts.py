"""Contract markets built from the candle data: which perpetuals a simulator lists.

The same candle file drives spot and every contract on its pair: the BTC/USDT
1h data prices the ``BTCUSDT`` USD-M perpetual, ``BTCUSD_PERP`` (COIN-M) and
Bybit's ``BTCUSDT`` (linear) and ``BTCUSD`` (inverse).  Market rules are data:
defaults close to the real exchanges', overridable per unified symbol.
"""
from .models import D, MarketRules, dec

# real-like defaults per (family, base); anything else gets the generic row
LINEAR_DEFAULTS = {
    'BTC': dict(tick='0.1', step='0.001', min_qty='0.001', max_qty='1000',
                min_notional='5', mmr='0.004', max_leverage=125),
    'ETH': dict(tick='0.01', step='0.001', min_qty='0.001', max_qty='10000',
                min_notional='5', mmr='0.004', max_leverage=100),
}
INVERSE_DEFAULTS = {
    'BTC': dict(tick='0.1', step='1', min_qty='1', max_qty='1000000', min_notional='0',
                contract_size='100', mmr='0.004', max_leverage=125),
    'ETH': dict(tick='0.01', step='1', min_qty='1', max_qty='1000000', min_notional='0',
                contract_size='10', mmr='0.005', max_leverage=75),
}
GENERIC = dict(tick='0.0001', step='1', min_qty='1', max_qty='1000000', min_notional='5',
               mmr='0.01', max_leverage=50)
NAMES = {'tickSize': 'tick', 'stepSize': 'step', 'minQty': 'min_qty', 'maxQty': 'max_qty',
         'minNotional': 'min_notional', 'contractSize': 'contract_size',
         'maintMarginRate': 'mmr', 'maxLeverage': 'max_leverage'}


def _rules(sid, base, quote, settle, kind, feed, defaults, override):
    spec = dict(defaults.get(base) or GENERIC)
    spec.update({NAMES.get(k, k): v for k, v in (override or {}).items() if k != 'feed'})
    fields = {k: (int(v) if k == 'max_leverage' else dec(v)) for k, v in spec.items()}
    fields.setdefault('min_price', fields['tick'])
    return MarketRules(sid, base, quote, kind=kind, settle=settle, feed=feed, **fields)


def parse_contract(symbol):
    """'BTC/USDT:USDT' -> ('BTC', 'USDT', 'USDT')."""
    pair, _, settle = symbol.partition(':')
    base, _, quote = pair.partition('/')
    if not (base and quote and settle):
        raise ValueError('contract symbols are written BASE/QUOTE:SETTLE, got %r' % symbol)
    return base.upper(), quote.upper(), settle.upper()


def build_contracts(spec, spot_symbols, feed_ids, kind, id_format):
    """{symbol id: MarketRules} for one family of perpetuals.

    ``spec``: None (derive from the data: every X/USDT pair), a falsy value (none),
    or {unified contract symbol: overrides or None}; an override may name its
    ``feed`` ('BTC/USDT').  ``feed_ids`` maps data symbols to feed ids;
    ``id_format`` makes the exchange id from base and quote.
    """
    if spec is None:
        spec = {}
        for sym in spot_symbols:
            base, _, quote = sym.partition('/')
            if quote == 'USDT':
                name = ('%s/USD:%s' % (base, base) if kind == 'inverse'
                        else '%s/USDT:USDT' % base)
                spec[name] = None
        if kind == 'inverse':  # only BTC by default, like the brief's BTCUSD_PERP
            spec = {k: v for k, v in spec.items() if k.startswith('BTC/')}
    out, unified = {}, {}
    defaults = INVERSE_DEFAULTS if kind == 'inverse' else LINEAR_DEFAULTS
    for symbol, override in (spec or {}).items():
        base, quote, settle = parse_contract(symbol)
        feed_symbol = (override or {}).get('feed') or '%s/USDT' % base
        if feed_symbol not in feed_ids:
            raise ValueError('no candle data prices %s: add %s to data or give a feed'
                             % (symbol, feed_symbol))
        sid = id_format % {'base': base, 'quote': quote}
        out[sid] = _rules(sid, base, quote, settle, kind, feed_ids[feed_symbol],
                          defaults, override)
        unified[symbol] = sid
    return out, unified


__all__ = ['build_contracts', 'parse_contract', 'D']
