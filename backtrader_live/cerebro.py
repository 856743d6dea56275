"""Cerebro with ``run_live``: one call from a strategy class to a live run."""
import gc
import importlib
import inspect
import logging
import pkgutil
import signal
import threading

import backtrader as bt

from .errors import ConfigError
from .linewindow import LineWindow
from .options import (DICT_OF, check_keys, init_names, merge, param_names, route,
                      takes_any_keyword)
from .notifications import NotificationsMixin

log = logging.getLogger(__name__)


def available_exchanges():
    """Exchange names that have a store module in backtrader_live.stores."""
    from . import stores
    return sorted(m.name for m in pkgutil.iter_modules(stores.__path__)
                  if not m.name.startswith('_'))


def find_store(exchange):
    """``backtrader_live.stores.<exchange>.<Exchange>Store``, by name."""
    names = available_exchanges()
    if not isinstance(exchange, str) or exchange.lower() not in names:
        raise ConfigError('unknown exchange %r; available exchanges: %s'
                          % (exchange, ', '.join(names)))
    module = importlib.import_module('backtrader_live.stores.' + exchange.lower())
    return getattr(module, exchange.capitalize() + 'Store')


class _StopControl:
    """Ends a live run cleanly on SIGINT/SIGTERM or after ``duration``.

    The first signal asks the feeds to finish (strategy.stop(), analyzers and
    the broker's exit policy all run); a second one interrupts at once.
    """

    def __init__(self, cerebro, duration):
        self.cerebro = cerebro
        self.duration = duration
        self.reason = None
        self._timer = None
        self._previous = {}
        self._signals = 0

    def stop(self, reason):
        if self.reason is None:
            self.reason = reason
            log.info('stopping the live run: %s', reason)
        for data in self.cerebro.datas:
            if hasattr(data, 'request_stop'):
                data.request_stop()

    def _on_signal(self, signum, frame):
        self._signals += 1
        if self._signals > 1:
            raise KeyboardInterrupt
        self.stop('signal %s' % signal.Signals(signum).name)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        if self.duration:
            self._timer = threading.Timer(self.duration, self.stop,
                                          args=('duration of %ss reached' % self.duration,))
            self._timer.name = 'bt-live-duration'
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc):
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join(1.0)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


class Cerebro(NotificationsMixin, bt.Cerebro):
    """backtrader's Cerebro plus :meth:`run_live`; backtests are unchanged.

    Its default broker is backtrader_live's (BackBroker underneath, so fills,
    cash and value are backtrader's own) with the risk gate on top: risk
    limits and RiskAnalyzer's kill switch are enforced in a backtest exactly
    as in a live run. ``setbroker()`` replaces it as usual.
    """

    def __init__(self):
        super().__init__()
        from .broker import BrokerBase       # broker imports nothing of Cerebro's
        # history_kept=None: a backtest keeps every order and trade, as upstream does.
        self._broker = BrokerBase(history_kept=None)
        self._line_window = None     # a live run's LineWindow (keep_bars)

    def _next_writers(self, runstrats):
        # Upstream calls this once per bar, after every strategy's next() (both
        # loops): the one point where no line is half-way through a bar.
        super()._next_writers(runstrats)
        if self._line_window is not None:
            self._line_window.tick(runstrats)

    def run_live(self, exchange, symbol, timeframe, strategy_cls, *,
                 apikey=None, secret=None, testnet=True, market_type='spot',
                 paper_trading=True, endpoint=None, strategy_params=None,
                 cash=10000.0, backfill_bars=200, max_bars=None, duration=None,
                 cancel_on_exit=False, keep_bars=20000, store_kwargs=None,
                 data_kwargs=None, broker_kwargs=None, run_kwargs=None, **options):
        """Trade ``strategy_cls`` live on ``exchange`` and return ``run()``'s result.

        - exchange: 'binance' (see ``available_exchanges()``); symbol in ccxt
          form ('BTC/USDT'); timeframe '1m' ... '1M'.
        - apikey/secret: or ``<EXCHANGE>_API_KEY``/``_API_SECRET``.
        - testnet=True and paper_trading=True are the defaults; real orders
          need ``paper_trading=False`` and real money also ``testnet=False``.
        - endpoint: base URL override, e.g. the simulator's ``base_url``.
        - cash: starting cash of a paper run.
        - backfill_bars: closed bars of history before going live.
        - max_bars / duration: stop after that many live bars / seconds.
        - cancel_on_exit: cancel our open orders when the run ends.
        - keep_bars: bars of every line (data, indicators, observers) kept in
          memory, enough for indicators and a plot of the recent past; memory
          stays flat over months (linewindow.py). None keeps every bar.
        - any other keyword goes to the component that has a parameter of
          that name: the store (``recv_window=5000``, ``rate_limit=False``),
          the broker (``leverage=3``), the data feed, the strategy
          (``fast=5``) or ``Cerebro.run`` (``exactbars``); an unknown or
          misspelt one is a ConfigError naming the closest valid option.
          ``store_kwargs``/``broker_kwargs``/``data_kwargs``/
          ``strategy_params``/``run_kwargs`` say it explicitly (options.py).
        """
        store_cls = find_store(exchange)
        parts = self._route_options(store_cls, strategy_cls, options, dict(
            store=store_kwargs, broker=broker_kwargs, data=data_kwargs,
            strategy=strategy_params, run=run_kwargs))
        store_kwargs, broker_kwargs, data_kwargs = parts['store'], parts['broker'], parts['data']
        strategy_params, run_kwargs = parts['strategy'], parts['run']
        if max_bars is not None and (not isinstance(max_bars, int) or max_bars < 1):
            raise ConfigError('max_bars must be a positive integer, got %r' % (max_bars,))
        if duration is not None and not duration > 0:
            raise ConfigError('duration must be a positive number of seconds, got %r'
                              % (duration,))
        window = LineWindow(keep_bars) if keep_bars is not None else None
        store = store_cls.get_instance(apikey=apikey, secret=secret, testnet=testnet,
                                       market_type=market_type, endpoint=endpoint,
                                       **(store_kwargs or {}))
        store.market_rules(symbol)     # unknown symbol: a clear error before starting
        data = store_cls.DataCls.from_timeframe_string(
            timeframe, store, symbol, backfill_bars=backfill_bars, max_live_bars=max_bars,
            **dict({'name': symbol}, **data_kwargs))
        broker = store.getbroker(paper_trading=paper_trading, testnet=testnet,
                                 cancel_on_exit=cancel_on_exit, cash=cash,
                                 **(broker_kwargs or {}))
        self._warn_if_real_money(paper_trading, testnet, endpoint)
        self.adddata(data)
        self.setbroker(broker)
        self.addstore(store)     # strategies get its notifications in notify_store
        self.addstrategy(strategy_cls, **(strategy_params or {}))
        # Live: hand order notifications to the strategy as they happen, not
        # at the next bar (an hour later on 1h bars).
        run_kwargs.setdefault('quicknotify', True)
        self._line_window = window
        # ccxt's client (API tables, markets) is several hundred thousand
        # objects: a full collection scanning them stalls the loop ~75 ms.
        # They live as long as the run: take them out of the collector's way.
        gc.collect()
        gc.freeze()
        control = _StopControl(self, duration)
        try:
            with control:
                result = self.run(**run_kwargs)
        except Exception as exc:
            _stop_after_failure(self, strategy_cls, broker, exc)
            raise
        finally:
            self._line_window = None     # a later run() is a backtest: every bar kept
            store.stop()
            gc.unfreeze()    # what the run left behind may be collected again
        if getattr(broker, 'halted', None) is not None:
            raise broker.halted      # keys or permissions refused mid-run (logged)
        return result

    # What run_live sets itself, per component (passed as its own arguments).
    _RESERVED = {'store': ('testnet', 'market_type', 'endpoint'),
                 'broker': ('paper_trading', 'testnet', 'cancel_on_exit', 'cash'),
                 'data': ('dataname', 'store', 'tf', 'backfill_bars', 'max_live_bars'),
                 'strategy': (), 'run': ()}

    def _route_options(self, store_cls, strategy_cls, flat, explicit):
        """{component: its keyword arguments}: flat options routed by name,
        merged with the explicit dictionaries; every key checked."""
        owners = {'store': param_names(store_cls), 'broker': param_names(store_cls.BrokerCls),
                  'data': param_names(store_cls.DataCls),
                  'strategy': param_names(strategy_cls) + init_names(strategy_cls),
                  'run': param_names(type(self))}
        valid = {kind: set(names) - set(self._RESERVED[kind]) for kind, names in owners.items()}
        own = inspect.signature(self.run_live).parameters
        routed = route(flat, valid, own)
        parts = {}
        for kind, given in explicit.items():
            what = DICT_OF[kind]
            if kind == 'strategy' and takes_any_keyword(strategy_cls):
                parts[kind] = merge(what, routed[kind], given)
                continue
            check_keys(what, given, valid[kind] | set(self._RESERVED[kind]),
                       reserved=self._RESERVED[kind])
            parts[kind] = merge(what, routed[kind], given)
        return parts

    @staticmethod
    def _warn_if_real_money(paper_trading, testnet, endpoint):
        if not paper_trading and not testnet and endpoint is None:
            log.warning('LIVE TRADING WITH REAL MONEY: orders go to the exchange')
        elif paper_trading:
            log.info('paper trading: no order is sent to the exchange')


def _stop_after_failure(cerebro, strategy_cls, broker, exc):
    """An exception escaped the run (a strategy's next(), say): log it with
    its context, then stop trading safely: the broker applies its exit
    policy to our open orders (``cancel_on_exit``) before the error goes on."""
    data = cerebro.datas[0] if cerebro.datas else None
    when = data.datetime.datetime(0) if data is not None and len(data) else None
    log.error('%s raised %s: %s (bar %s of %s); trading stops, open orders are %s',
              strategy_cls.__name__, type(exc).__name__, exc, when,
              getattr(data, '_name', None) or getattr(getattr(data, 'p', None), 'dataname', None),
              'cancelled' if broker.p.cancel_on_exit else 'left on the exchange',
              exc_info=exc)
    try:
        broker.stop()
    except Exception:   # the original error matters more; this one is logged
        log.exception('stopping the broker after the failure failed too')


# The rest of upstream's cerebro module, for drop-in imports.
import backtrader.cerebro as _upstream_cerebro  # noqa: E402
from ._namespace import merge_into  # noqa: E402
merge_into(globals(), _upstream_cerebro)
