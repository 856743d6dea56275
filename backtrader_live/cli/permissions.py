"""``check``'s API key permissions: may the key trade this market, and can it
withdraw (it should not: a trading bot never needs to, and a leaked key that
can withdraw empties the account).

Each exchange reports this on its own documented route; how to ask and how
to read the answer is data in :data:`PROBES`, one row per exchange:

- Binance ``GET /sapi/v1/account/apiRestrictions``: ``enableSpotAndMarginTrading``
  (spot), ``enableFutures`` (USD-M and COIN-M), ``enableWithdrawals``,
  ``ipRestrict``;
- Bybit v5 ``GET /v5/user/query-api``: ``readOnly`` (1: no trading at all),
  ``permissions.Spot`` holds ``SpotTrade``, ``permissions.ContractTrade``
  holds ``Order`` (linear and inverse), ``permissions.Wallet`` holds
  ``Withdraw`` when the key may withdraw, ``ips`` (``*``: not bound).
"""
import ccxt

from ..markets import INVERSE, LINEAR, SPOT

OK, WARN, FAIL = 'ok', 'warn', 'FAIL'


def _binance(raw):
    futures = bool(raw.get('enableFutures'))
    return {'trading': {SPOT: bool(raw.get('enableSpotAndMarginTrading')),
                        LINEAR: futures, INVERSE: futures},
            'withdrawals': bool(raw.get('enableWithdrawals')),
            'ip_restrict': bool(raw.get('ipRestrict'))}


def _bybit(raw):
    result = raw.get('result') or {}
    perms = result.get('permissions') or {}
    writable = str(result.get('readOnly')) in ('0', 'False', 'false')
    contract = writable and 'Order' in (perms.get('ContractTrade') or ())
    return {'trading': {SPOT: writable and 'SpotTrade' in (perms.get('Spot') or ()),
                        LINEAR: contract, INVERSE: contract},
            'withdrawals': 'Withdraw' in (perms.get('Wallet') or ()),
            'ip_restrict': bool(result.get('ips')) and result.get('ips') != ['*']}


#: exchange -> (ccxt method of the route, reader of its answer, the route for messages)
PROBES = {
    'binance': ('sapi_get_account_apirestrictions', _binance,
                'GET /sapi/v1/account/apiRestrictions'),
    'bybit': ('private_get_v5_user_query_api', _bybit, 'GET /v5/user/query-api'),
}


def permission_checks(store, exchange):
    """Findings ``(check, result, detail)`` for the store's key and market."""
    probe = PROBES.get(exchange.split(':')[0])
    if probe is None:
        return [('key permissions', WARN, '%s: no documented permissions route known; '
                 'not checked' % exchange)]
    method, read, route = probe
    try:
        found = read(getattr(store.exchange, method)())
    except ccxt.BaseError as exc:
        return [('key permissions', WARN, 'could not ask %s (%s): %s' % (
            route, type(exc).__name__, str(exc)[:300]))]
    kind = store.kind
    trading = found['trading'][kind]
    return [
        ('key trading', OK if trading else FAIL,
         ('the key may trade %s' % kind) if trading else
         'the key may NOT trade %s: enable trading for it in the exchange\'s API '
         'management (%s)' % (kind, route)),
        ('key withdrawals', WARN if found['withdrawals'] else OK,
         'the key may WITHDRAW funds: a trading bot never needs that; create a key '
         'without withdrawals' if found['withdrawals'] else 'withdrawals disabled'),
        ('key IP restriction', OK if found['ip_restrict'] else WARN,
         'bound to IP addresses' if found['ip_restrict'] else
         'not bound to IP addresses (binding the key to the bot\'s address is safer)'),
    ]
