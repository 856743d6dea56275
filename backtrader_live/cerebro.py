"""Cerebro with ``run_live``: one call from a strategy class to a live run."""
import gc
import inspect
import logging
import signal
import threading

import backtrader as bt

from .errors import ConfigError, LiveError
from .feedgroup import SYNC_TIMEOUT, link_feeds
from .linewindow import LineWindow
from . import multifeed
from . import replay as replay_module
from .options import (DICT_OF, check_keys, init_names, merge, param_names, route,
                      takes_any_keyword)
from .notifications import NotificationsMixin
from .runconfig import check_count, check_endpoint, check_options

log = logging.getLogger(__name__)

# Seconds the exit policy (cancel_on_exit) may take after a second Ctrl-C.
EXIT_TIMEOUT = 30.0

# Options run_live sets itself: {key in *_kwargs: run_live's argument to use}
_STORE_TAKEN = {'apikey': 'apikey', 'secret': 'secret', 'testnet': 'testnet',
                'market_type': 'market_type', 'endpoint': 'endpoint'}
_BROKER_TAKEN = {'paper_trading': 'paper_trading', 'testnet': 'testnet',
                 'cancel_on_exit': 'cancel_on_exit', 'cash': 'cash', 'store': 'exchange'}
_DATA_TAKEN = {'dataname': 'symbol', 'name': 'symbol', 'store': 'exchange',
               'tf': 'timeframe', 'backfill_bars': 'backfill_bars', 'max_live_bars': 'max_bars'}
_CEREBRO_TAKEN = {'sync_timeout'}      # run_live's own, not Cerebro.run's


def available_exchanges():
    """Exchange names with a native store: built-in, installed (entry points
    ``backtrader_live.exchanges``) or registered (see backtrader_live.exchanges)."""
    from . import exchanges
    return exchanges.names()


def find_store(exchange):
    """The registered store of ``exchange`` (the native tier, backtrader_live.exchanges),
    else the generic tier for any ccxt exchange id; ``'ccxt:<id>'`` forces it."""
    from . import exchanges, generic
    store_cls = exchanges.store_class(exchange) if isinstance(exchange, str) and \
        exchange.strip() and not exchange.strip().lower().startswith(generic.PREFIX) else None
    if store_cls is not None:
        return store_cls
    if isinstance(exchange, str) and generic.is_ccxt_exchange(exchange):
        return generic.generic_store(exchange)
    names = available_exchanges()
    near = exchanges.closest(exchange, names) if isinstance(exchange, str) and \
        exchange.strip() else None
    raise ConfigError('unknown exchange %r%s; native exchanges: %s; or any ccxt exchange id '
                      '(ccxt.exchanges, e.g. okx), %s<id> to force the generic tier'
                      % (exchange, " (did you mean '%s'?)" % near if near else '',
                         ', '.join(names), generic.PREFIX))


def _freeze_for_the_run():
    """Take what exists now out of the garbage collector's way for the run.

    ccxt's client (API tables, markets) is several hundred thousand objects:
    a full collection scanning them stalls the loop ~75 ms. They live as long
    as the run: collect once, then ``gc.freeze()`` (``gc.unfreeze()`` when the
    run ends). A process that froze objects itself (pre-fork servers, the
    test suite) manages the collector: its frozen objects must stay frozen,
    and unfreeze() cannot tell ours from its own, so the collector is left as
    it is. Returns whether it froze.
    """
    if gc.get_freeze_count():
        return False
    gc.collect()
    gc.freeze()
    return True


class _StopControl:
    """Ends a live run cleanly on SIGINT/SIGTERM or after ``duration``.

    The first signal asks the feeds to finish (strategy.stop(), analyzers and
    the broker's exit policy all run); a second one interrupts at once, and
    run_live still applies the broker's exit policy (bounded, logged).
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
            log.warning('second %s: interrupting the run now; the exit policy still runs '
                        '(at most %.0fs)', signal.Signals(signum).name, EXIT_TIMEOUT)
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
        self._sync_timeout = SYNC_TIMEOUT    # feedgroup.py: a late feed's grace

    def keep_recent_bars(self, window):
        """Trim every line to a :class:`LineWindow` each bar of the next runs
        (None: keep every bar, backtrader's behaviour). run_live does this."""
        self._line_window = window
        if window is None:
            self.__dict__.pop('_next_writers', None)
        else:
            self._next_writers = self._next_writers_trimming

    def _next_writers_trimming(self, runstrats):
        # Upstream calls _next_writers once per bar, after every strategy's
        # next() (both loops): the one point where no line is half-way through
        # a bar. run_live installs this in its place (a backtest pays nothing).
        bt.Cerebro._next_writers(self, runstrats)
        self._line_window.tick(runstrats)

    def run_live(self, exchange, symbol, timeframe, strategy_cls, *,
                 apikey=None, secret=None, testnet=True, market_type='spot',
                 paper_trading=True, endpoint=None, strategy_params=None,
                 cash=10000.0, backfill_bars=200, max_bars=None, duration=None,
                 cancel_on_exit=False, keep_bars=20000, store_kwargs=None,
                 data_kwargs=None, broker_kwargs=None, run_kwargs=None,
                 sync_timeout=SYNC_TIMEOUT, replay=None, **options):
        """Trade ``strategy_cls`` live on ``exchange`` and return ``run()``'s result.

        - exchange: 'binance' (see ``available_exchanges()``); symbol in ccxt
          form ('BTC/USDT'); timeframe '1m' ... '1M'.
        - several feeds: a list of symbols and/or of timeframes
          (``['BTC/USDT', 'ETH/USDT']``, ``['1h', '4h']``): one feed per
          (timeframe, symbol), data0 the first symbol at the first timeframe;
          bars of one time come in one ``next()`` as in a backtest, a longer
          timeframe's bar with the shortest one's bar that closes with it
          (docs/live-trading.md, feedgroup.py). ``sync_timeout``: seconds a
          feed waits for a late one before going on without it.
        - replay: a timeframe name ('1h'): every feed of the first timeframe
          is replayed to it as ``cerebro.replaydata`` does (replay.py): its
          forming bar updated by each closed bar, ``next()`` on each update.
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
        _check_arguments(endpoint, backfill_bars, max_bars, duration)
        _check_sync_timeout(sync_timeout)
        symbols = multifeed.as_names('symbol', symbol)
        timeframes = multifeed.check_timeframes(timeframe, store_cls.TIMEFRAMES)
        replayed = replay_module.run_live_target(replay, timeframes, store_cls.TIMEFRAMES)
        window = LineWindow(keep_bars) if keep_bars is not None else None
        store = store_cls.get_instance(apikey=apikey, secret=secret, testnet=testnet,
                                       market_type=market_type, endpoint=endpoint,
                                       **(store_kwargs or {}))
        # unknown symbols, another market type: one clear error before starting
        multifeed.check_symbols(store, symbols)
        base_tf = min(timeframes, key=lambda tf: store_cls.DataCls.TIMEFRAME_SPECS[tf][2])
        datas = [store_cls.DataCls.from_timeframe_string(
            tf, store, sym, max_live_bars=max_bars,
            backfill_bars=multifeed.history_bars(backfill_bars, base_tf, tf),
            **dict({'name': name}, **data_kwargs))
            for sym, tf, name in multifeed.plan(symbols, timeframes)]
        broker = store.getbroker(paper_trading=paper_trading, testnet=testnet,
                                 cancel_on_exit=cancel_on_exit, cash=cash,
                                 **(broker_kwargs or {}))
        self._warn_if_real_money(paper_trading, testnet, endpoint)
        self._sync_timeout = sync_timeout
        for data in datas:
            if replayed is not None and data.p.tf == timeframes[0]:
                self.replaydata(data, **replayed)
            else:
                self.adddata(data)
        self.setbroker(broker)
        self.addstore(store)     # strategies get its notifications in notify_store
        self.addstrategy(strategy_cls, **(strategy_params or {}))
        # Live: hand order notifications to the strategy as they happen, not
        # at the next bar (an hour later on 1h bars).
        run_kwargs.setdefault('quicknotify', True)
        self.keep_recent_bars(window)
        froze = _freeze_for_the_run()
        control = _StopControl(self, duration)
        self._live_loop_started = False
        try:
            with control:
                result = self.run(**run_kwargs)
        except Exception as exc:
            _stop_after_failure(self, strategy_cls, broker, exc)
            raise
        except KeyboardInterrupt:
            _exit_after_interrupt(broker, EXIT_TIMEOUT)
            raise
        finally:
            self.keep_recent_bars(None)     # a later run() is a backtest: every bar kept
            store.stop()
            if froze:
                gc.unfreeze()    # what the run left behind may be collected again
        if getattr(broker, 'halted', None) is not None:
            raise broker.halted      # keys or permissions refused mid-run (logged)
        return result

    def _route_options(self, store_cls, strategy_cls, flat, explicit):
        """{component: its keyword arguments}: flat options routed by name
        (options.py), merged with the explicit dictionaries; every key checked."""
        classes = {'store': (store_cls, _STORE_TAKEN), 'broker': (store_cls.BrokerCls,
                                                                   _BROKER_TAKEN),
                   'data': (store_cls.DataCls, _DATA_TAKEN)}
        valid = {kind: set(param_names(cls)) - set(taken)
                 for kind, (cls, taken) in classes.items()}
        valid['strategy'] = set(param_names(strategy_cls) + init_names(strategy_cls))
        valid['run'] = set(param_names(type(self))) - _CEREBRO_TAKEN
        routed = route(flat, valid, inspect.signature(self.run_live).parameters)
        parts = {}
        for kind, given in explicit.items():
            what = DICT_OF[kind]
            if kind in classes:
                check_options(what, given, *classes[kind])
            elif not (kind == 'strategy' and takes_any_keyword(strategy_cls)):
                check_keys(what, given, valid[kind])
            parts[kind] = merge(what, routed[kind], given)
        return parts

    # -- several live feeds ------------------------------------------------------
    def runstrategies(self, iterstrat, predata=False):
        # Link the live feeds of this run (run_live's or added by hand with
        # adddata/resampledata) so their bars come in time order (feedgroup.py).
        replay_module.check_run(self.datas)
        link_feeds(self.datas, self._sync_timeout)
        multifeed.guard_orders(self._broker, self.datas)
        return super().runstrategies(iterstrat, predata=predata)

    def resampledata(self, dataname, name=None, **kwargs):
        """Upstream's, except on a live feed of ours: a feed of the exchange's
        closed bars of the longer timeframe (multifeed.resampled_feed)."""
        if not _is_live_feed(dataname):
            return super().resampledata(dataname, name=name, **kwargs)
        feed = multifeed.resampled_feed(dataname, kwargs)
        self.adddata(feed, name=name or '%s %s' % (dataname.p.dataname, feed.p.tf))
        return feed

    def replaydata(self, dataname, name=None, **kwargs):
        """Upstream's; on a feed of ours (live or history only: its bars carry
        their open time), upstream's Replayer over its closed bars
        (replay.py): the strategy sees the forming bar of the target
        timeframe updated by every closed bar, as in a backtest."""
        from .feed import DataBase
        if not isinstance(dataname, DataBase):
            return super().replaydata(dataname, name=name, **kwargs)
        feed, options, default = replay_module.replayed_feed(dataname, kwargs, self.datas)
        return super().replaydata(feed, name=name or default, **options)

    # -- the end of a run: one final sync with the exchange, however it ends --
    def _runnext(self, runstrats):
        self._live_loop_started = True
        super()._runnext(runstrats)
        self._final_sync(runstrats)

    def _runnext_old(self, runstrats):
        self._live_loop_started = True
        super()._runnext_old(runstrats)
        self._final_sync(runstrats)

    def _final_sync(self, runstrats):
        """Whatever ended the loop (max_bars, duration, a signal, runstop(),
        the data's end), ask the exchange about our orders and balances once
        and hand what that found to the strategies before upstream calls
        their stop() and the analyzers' (runstop() skips the feeds'
        finishing round, where this happens otherwise; a second call is a
        no-op). Backtests are untouched: their broker is not live."""
        broker = self._broker
        if not getattr(broker, 'live', False) or not hasattr(broker, 'sync_before_stop'):
            return
        broker.sync_before_stop()
        self._brokernotify()     # quicknotify: notify_order/notify_trade now
        if not self.p.quicknotify:
            for strat in runstrats:
                strat._notify()

    @staticmethod
    def _warn_if_real_money(paper_trading, testnet, endpoint):
        if not paper_trading and not testnet and endpoint is None:
            log.warning('LIVE TRADING WITH REAL MONEY: orders go to the exchange')
        elif paper_trading:
            log.info('paper trading: no order is sent to the exchange')


def _check_arguments(endpoint, backfill_bars, max_bars, duration):
    """Refuse bad arguments before anything is built or connected."""
    check_endpoint(endpoint)
    check_count('backfill_bars', backfill_bars, 0)
    if max_bars is not None and (isinstance(max_bars, bool) or not isinstance(max_bars, int)
                                 or max_bars < 1):
        raise ConfigError('max_bars must be a positive integer, got %r' % (max_bars,))
    if duration is not None and (isinstance(duration, bool) or
                                 not isinstance(duration, (int, float)) or not duration > 0):
        raise ConfigError('duration must be a positive number of seconds, got %r'
                          % (duration,))


def _check_sync_timeout(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError('sync_timeout must be a positive number of seconds (how long a '
                          'feed waits for a late one), got %r' % (value,))


def _is_live_feed(data):
    from .feed import DataBase
    return isinstance(data, DataBase) and data.p.live


def _stop_after_failure(cerebro, strategy_cls, broker, exc):
    """An exception escaped the run (a strategy's next(), say): log it with
    its context, then stop trading safely: the broker applies its exit
    policy to our open orders (``cancel_on_exit``) before the error goes on.

    Before the first round of the loop, a configuration or exchange error
    (bad keys, leverage out of range, a bad option) is the run's start-up
    failing, not the strategy: it is logged as such."""
    data = cerebro.datas[0] if cerebro.datas else None
    policy = 'cancelled' if broker.p.cancel_on_exit else 'left on the exchange'
    if not cerebro._live_loop_started and isinstance(exc, (ConfigError, LiveError)):
        log.error('the live run could not start (configuration or start-up error): %s: %s; '
                  'no bar was traded, open orders are %s', type(exc).__name__, exc, policy)
    else:
        when = data.datetime.datetime(0) if data is not None and len(data) else None
        log.error('%s raised %s: %s (bar %s of %s); trading stops, open orders are %s',
                  strategy_cls.__name__, type(exc).__name__, exc, when,
                  getattr(data, '_name', None) or
                  getattr(getattr(data, 'p', None), 'dataname', None), policy, exc_info=exc)
    try:
        broker.stop()
    except Exception:   # the original error matters more; this one is logged
        log.exception('stopping the broker after the failure failed too')


def _exit_after_interrupt(broker, timeout):
    """A second signal interrupted the run: the broker's exit policy
    (``cancel_on_exit``) still runs, in a named thread given ``timeout``
    seconds, so an unreachable exchange cannot keep the process hostage."""
    log.warning('run interrupted: applying the exit policy (%s), at most %.0fs',
                'cancel our open orders' if broker.p.cancel_on_exit else 'leave open orders',
                timeout)
    worker = threading.Thread(target=_stop_broker, args=(broker,), name='bt-live-exit',
                              daemon=True)
    worker.start()
    try:
        worker.join(timeout)
    except KeyboardInterrupt:
        log.error('interrupted again: not waiting for the exit policy; check the '
                  'exchange for open orders')
        return
    if worker.is_alive():
        log.error('the exit policy did not finish within %.0fs; check the exchange for '
                  'open orders', timeout)


def _stop_broker(broker):
    try:
        broker.stop()
    except Exception:   # logged: the interrupt is what the caller sees
        log.exception('applying the exit policy after the interrupt failed')


# The rest of upstream's cerebro module, for drop-in imports.
import backtrader.cerebro as _upstream_cerebro  # noqa: E402
from ._namespace import merge_into  # noqa: E402
merge_into(globals(), _upstream_cerebro)
