"""What an API key may do, as the exchanges report it to the key's owner.

Binance answers ``GET /sapi/v1/account/apiRestrictions`` (one set of flags
for the account's key: enableReading, enableSpotAndMarginTrading,
enableFutures, enableWithdrawals, ipRestrict, ...), Bybit v5 answers
``GET /v5/user/query-api`` (readOnly 0/1, permissions per product:
ContractTrade [Order, Position], Spot [SpotTrade], Wallet [AccountTransfer,
SubMemberTransfer, Withdraw], ..., and the bound ``ips``, ``*`` for none).

The simulator keeps one :class:`KeyPermissions` per key, so a test can make
a key without trading rights or with withdrawals on. The flags are reported,
not enforced: the simulator's order routes accept any valid key (a key
without trading rights is only for testing what ``check`` says of it).
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class KeyPermissions:
    trading: bool = True          # spot (and, on Bybit, every product) trading
    futures: bool = True          # derivatives trading (Binance enableFutures)
    withdrawals: bool = False     # the key may withdraw funds
    ip_restrict: bool = False     # the key is bound to IP addresses

    def changed(self, **changes):
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError('unknown key permission(s) %s; accepted: %s' % (
                ', '.join(unknown), ', '.join(f.name for f in dataclasses.fields(self))))
        return dataclasses.replace(self, **changes)


#: createTime of every simulated key (a fixed instant: replies stay deterministic)
CREATED_MS = 1704067200000


def binance_restrictions(perms):
    """The body of Binance's GET /sapi/v1/account/apiRestrictions."""
    return {'ipRestrict': perms.ip_restrict, 'createTime': CREATED_MS,
            'enableReading': True, 'enableWithdrawals': perms.withdrawals,
            'enableInternalTransfer': False, 'enableMargin': False,
            'enableFutures': perms.futures,
            'permitsUniversalTransfer': False, 'enableVanillaOptions': False,
            'enableFixApiTrade': False, 'enableFixReadOnly': False,
            'enableSpotAndMarginTrading': perms.trading,
            'enablePortfolioMarginTrading': False}


def bybit_key_info(perms, key):
    """The result of Bybit's GET /v5/user/query-api for ``key``."""
    wallet = ['AccountTransfer'] + (['Withdraw'] if perms.withdrawals else [])
    contract = ['Order', 'Position'] if perms.trading and perms.futures else []
    return {'id': '1', 'note': 'backtrader_live.sim', 'apiKey': key,
            'readOnly': 0 if perms.trading else 1, 'secret': '', 'permissions': {
                'ContractTrade': contract, 'Spot': ['SpotTrade'] if perms.trading else [],
                'Wallet': wallet, 'Options': [], 'Derivatives': [], 'CopyTrading': [],
                'BlockTrade': [], 'Exchange': [], 'NFT': []},
            'ips': ['127.0.0.1'] if perms.ip_restrict else ['*'], 'type': 1,
            'deadlineDay': -1, 'expiredAt': '', 'createdAt': '2024-01-01T00:00:00Z',
            'unified': 0, 'uta': 1, 'userID': 1, 'inviterID': 0, 'vipLevel': 'No VIP',
            'mktMakerLevel': '0', 'affiliateID': 0, 'rsaPublicKey': '', 'isMaster': True}
