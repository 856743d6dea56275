"""``config init``'s starting file and TOML output for ``show``/``migrate``."""
import tomli_w

TEMPLATE = '''\
# backtrader_live run configuration (reference: docs/config.md)
version = 1

[live]                     # Cerebro.run_live's own arguments
exchange = "binance"       # or "bybit", or any ccxt exchange id
symbol = "BTC/USDT"
timeframe = "1h"
market_type = "spot"
testnet = true             # real money needs testnet = false AND paper_trading = false
paper_trading = true       # true: no order is sent to the exchange
cash = 10000.0             # starting cash of a paper run
backfill_bars = 200

[strategy]
class = "backtrader.strategies:SMA_CrossOver"   # or "path/to/file.py:Class"
params = { fast = 10, slow = 30 }

[sizer]                    # cerebro.addsizer: a backtrader name or "module:Class"
class = "PercentSizer"
params = { percents = 10 }

[options.store]            # store_kwargs (e.g. recv_window = 5000)
[options.broker]           # broker_kwargs (e.g. leverage = 3)

[risk]
enabled = false
max_drawdown_limit = 0.15

[journal]
url = "sqlite:///journal.db"   # relative to this file; or postgresql+psycopg://...

# Keys: BINANCE_API_KEY / BINANCE_API_SECRET in the environment, or:
# [secrets]
# file = "~/.config/backtrader_live/binance.toml"   # apikey/secret, chmod 600
'''


def dump(config):
    """The config as TOML (every key, defaults filled in, None left out)."""
    data = config.model_dump(by_alias=True, exclude_none=True)
    return tomli_w.dumps(data)
