"""Drive a live run from a test: the strategy records, the test steps the clock."""
import threading

import backtrader

import backtrader_live as btl
from helpers import eventually


class Recorder:
    """What a strategy saw, in order (appended from Cerebro's thread)."""

    def __init__(self):
        self.bars = []          # (datetime, close, live?)
        self.orders = []        # (status name, executed size, executed price, comm, reason)
        self.trades = []        # (pnl, pnlcomm)
        self.data_status = []
        self.store_msgs = []
        self.positions = []     # position size after each bar
        self.strategy = None

    def statuses(self):
        return [o[0] for o in self.orders]


class Recording(backtrader.Strategy):
    """An upstream backtrader strategy (not ours) that records what it is
    told into ``rec`` (a Recorder)."""

    params = (('rec', None),)

    def __init__(self):
        self.p.rec.strategy = self

    def notify_order(self, order):
        self.p.rec.orders.append((order.getstatusname(), order.executed.size,
                                  order.executed.price, order.executed.comm,
                                  order.info.get('reject_reason')))

    def notify_trade(self, trade):
        if trade.isclosed:
            self.p.rec.trades.append((trade.pnl, trade.pnlcomm))

    def notify_store(self, msg, *args, **kwargs):
        self.p.rec.store_msgs.append((msg,) + args)

    def notify_data(self, data, status, *args, **kwargs):
        self.p.rec.data_status.append(data._getstatusname(status))


class Scripted(Recording):
    """Runs a script: ``script = {bar_number: callable(strategy)}``, 1-based."""

    params = (('script', None),)

    def next(self):
        rec = self.p.rec
        rec.positions.append(self.position.size)
        action = (self.p.script or {}).get(len(rec.bars) + 1)
        if action is not None:
            action(self)
        # Last: a test waiting for this bar knows the action has been taken.
        rec.bars.append((self.data.datetime.datetime(0), self.data.close[0]))


# The simulator on 127.0.0.1 is not the exchange whose request budget ccxt's
# rateLimit describes: a bucket of 20 cost units lets a run's start-up calls
# (Binance's exchangeInfo alone costs 20) go at once instead of spacing them
# over ~1-2 s, while still going through the throttle. Tests of the rate limit
# itself set their own. (A much larger one once made an order on Bybit never
# settle: it went out before the exchange had answered the private
# subscription; the stream is LIVE from that answer now: test_user_subscription.py.)
LOCAL_BURST = 20.0


def local_store_kwargs(store_kwargs=None):
    """``store_kwargs`` for a run against the local simulator."""
    merged = {'rate_limit_burst': LOCAL_BURST}
    merged.update(store_kwargs or {})
    return merged


class LiveRun:
    """``run_live`` in a worker thread against a step-mode simulator."""

    def __init__(self, sim, script=None, backfill_bars=5, max_bars=5, strategy=Scripted,
                 cerebro=None, exchange='binance', symbol='BTC/USDT', timeframe='1h',
                 topic='btcusdt@kline_1h', user_market='spot', warmup=1, **kwargs):
        from helpers import KEY, SECRET
        self.sim = sim
        self.rec = Recorder()
        # bars of history the strategy sees (indicators need warmup - 1 first)
        self.backfill = backfill_bars - (warmup - 1)
        self.cerebro = cerebro or btl.Cerebro()
        self.error = None
        self.result = None
        opts = dict(endpoint=sim.base_url, apikey=KEY, secret=SECRET, paper_trading=False,
                    backfill_bars=backfill_bars, max_bars=max_bars,
                    strategy_params={'rec': self.rec, 'script': script or {}})
        if kwargs.get('strategy_params', 0) is None:     # the strategy takes rec only
            kwargs['strategy_params'] = {'rec': self.rec}
        opts.update(kwargs)
        opts['store_kwargs'] = local_store_kwargs(opts.get('store_kwargs'))
        self._args = (exchange, symbol, timeframe, strategy)
        self._topic, self._user_market = topic, user_market
        self._opts = opts
        self._thread = threading.Thread(target=self._run, name='test-live-run', daemon=True)

    def _run(self):
        try:
            self.result = self.cerebro.run_live(*self._args, **self._opts)
        except BaseException as exc:   # reported by join()
            self.error = exc

    def start(self, wait_subscribed=True):
        self._thread.start()
        if wait_subscribed:
            self.sim.wait_subscribed(self._topic, timeout=10)
            if not self._opts.get('paper_trading', True):
                self.sim.wait_user_subscribed(timeout=10, **(
                    {'market': self._user_market} if self._user_market != 'spot' else {}))
        eventually(lambda: len(self.rec.bars) >= self.backfill or self.error, 10)
        return self

    def step(self, n=1):
        """Close ``n`` bars, each time waiting until the strategy saw it and
        the orders it placed are settled (answered, fills in)."""
        for _ in range(n):
            seen = len(self.rec.bars)
            self.sim.step()
            eventually(lambda: len(self.rec.bars) > seen or self.error
                       or not self._thread.is_alive(), 10)
            eventually(self._settled, 10)
        return self

    def _settled(self):
        strategy = self.rec.strategy
        broker = getattr(strategy, 'broker', None)
        if self.error or not self._thread.is_alive() or not hasattr(broker, 'settled'):
            return True
        if getattr(broker.p, 'paper_trading', False):
            return broker.settled()
        # Live: settled at the exchange, and told: an order placed in next() is
        # answered before Cerebro hands its notifications to the strategy (the
        # broker's queue; a live broker wakes the loop for them), which a
        # loaded machine can delay past step(). A paper broker's are handed
        # over with the next bar, as in a backtest.
        return broker.settled() and not getattr(broker, 'notifs', None)

    def join(self, timeout=15):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), 'the live run did not stop'
        if self.error is not None:
            raise self.error
        return self.result
