"""Attach a :class:`Journal` to a run without touching the broker, store or
feeds: an Analyzer (orders, fills, trades, equity, positions, risk) and
Cerebro's public data/store callbacks (stream state, errors).

Each hook only builds a small dict and queues it (writer.py), so a bar or an
order notification costs a few microseconds more, not a database write.

Fills are recorded from each order's execution bits (upstream's
``order.executed.exbits``). The exchange's trade id of a bit is taken from
``order.info['trade_ids']``, where the live broker records each fill's id
(``fills.py``'s ``_apply_fill``); a paper fill has none, and then the id is
``<client id>#<n>`` (the n-th execution of that order), unique and stable
for a run.
"""
import datetime

import backtrader as bt

from .core import utcnow


def _dt(num):
    try:
        return bt.num2date(num) if num else None
    except (ValueError, OverflowError):
        return None


def data_symbol(data):
    """The market a feed prices: its ``dataname`` when that is a symbol (a live
    feed's ccxt symbol; a resampled feed's source feed is followed), else the
    feed's name. Not the name alone: with several timeframes a feed is named
    'BTC/USDT 4h', and the journal keys orders, fills and positions by symbol."""
    feed = data
    for _ in range(8):          # resampled of resampled ...: a short chain
        name = getattr(getattr(feed, 'p', None), 'dataname', None)
        if isinstance(name, str):
            return name
        if not hasattr(name, 'p'):
            break
        feed = name
    return getattr(data, '_name', None) or None


def _order_symbol(order):
    return data_symbol(order.data)


class JournalAnalyzer(bt.Analyzer):
    """Params: ``journal`` (a started :class:`Journal`), ``exchange`` (name
    for fills' uniqueness), ``snapshot_every`` (bars between position and
    balance snapshots besides those taken when a position or the cash
    changes and at the end; 0: only those)."""

    params = (('journal', None), ('exchange', ''), ('snapshot_every', 0))

    def start(self):
        self._journal = self.p.journal
        self._bits_seen = {}          # order ref -> execution bits recorded
        self._known = {}              # order ref -> exchange id recorded in orders
        self._kill = []               # kill switch reasons last seen
        self._breaches = []           # RiskAnalyzer's breaches last seen
        self._alerts_seen = set()
        self._risk = None
        for analyzer in self.strategy.analyzers:
            if hasattr(analyzer, 'breaches') and hasattr(analyzer, 'get_analysis'):
                self._risk = analyzer
        self._bars = 0
        self._last_state = None       # (cash, position sizes) of the last snapshot
        self._holders = self._position_feeds()
        rearm = getattr(self.strategy.broker, 'rearm', None)
        if rearm is not None:       # live: emulated orders kept for a restart (rearm.py)
            rearm.use(self._journal)

    # -- orders and fills ----------------------------------------------------------
    def notify_order(self, order):
        rec = self._journal.record
        info = order.info
        cid = info.get('client_id')
        xid = info.get('exchange_id')
        if order.ref not in self._known or self._known[order.ref] != xid:
            self._known[order.ref] = xid
            rec('orders', ref=order.ref, client_id=cid, exchange_id=xid,
                symbol=_order_symbol(order), side='buy' if order.isbuy() else 'sell',
                type=order.getordername(), size=order.created.size,
                price=order.created.price, created_at=_dt(order.created.dt))
        executed = order.executed
        rec('order_events', order_ref=order.ref, client_id=cid,
            status=order.getstatusname(), executed_size=executed.size,
            executed_price=executed.price, comm=executed.comm,
            reason=info.get('reject_reason'), at=utcnow())
        self._record_fills(order, cid)

    def _record_fills(self, order, cid):
        bits = order.executed.exbits
        seen = self._bits_seen.get(order.ref, 0)
        if len(bits) <= seen:
            return
        trade_ids = list(order.info.get('trade_ids') or ())
        for n in range(seen, len(bits)):
            bit = bits[n]
            trade_id = trade_ids[n] if n < len(trade_ids) else None
            if trade_id is None:    # no id from the exchange: unique and stable instead
                trade_id = '%s#%d' % (cid or 'ref%d' % order.ref, n + 1)
            self._journal.record(
                'fills', exchange=self.p.exchange, symbol=_order_symbol(order) or '',
                trade_id=str(trade_id), order_ref=order.ref, client_id=cid,
                exchange_order_id=order.info.get('exchange_id'),
                side='buy' if bit.size > 0 else 'sell', size=bit.size, price=bit.price,
                comm=bit.closedcomm + bit.openedcomm, pnl=bit.pnl, at=_dt(bit.dt))
        self._bits_seen[order.ref] = len(bits)

    def notify_trade(self, trade):
        if trade.isclosed:
            self._journal.record(
                'trades', symbol=data_symbol(trade.data), ref=trade.ref,
                pnl=trade.pnl, pnlcomm=trade.pnlcomm, commission=trade.commission,
                barlen=trade.barlen, opened_at=_dt(trade.dtopen),
                closed_at=_dt(trade.dtclose))

    # -- each bar ------------------------------------------------------------------
    def next(self):
        broker = self.strategy.broker
        at = self.strategy.datetime[0]      # a date number: the writer converts it
        cash = broker.getcash()
        self._journal.record('equity', at=at, value=broker.getvalue(), cash=cash)
        self._bars += 1
        state = (cash,) + tuple(broker.getposition(d).size for _, d in self._priced())
        every = self.p.snapshot_every
        if state != self._last_state or (every and self._bars % every == 0):
            self._snapshot(at)
            self._last_state = state
        self._risk_events(at)

    def stop(self):
        if len(self.strategy):
            self._snapshot(self.strategy.datetime[0])

    def _position_feeds(self):
        """(symbol, feed) of each symbol's first feed: the one that trades it
        (a second timeframe of a symbol holds no position of its own)."""
        found = {}
        for data in self.strategy.datas:
            found.setdefault(data_symbol(data) or '', data)
        return list(found.items())

    def _priced(self):
        """The position feeds that have a bar. Not the others: asking
        backtrader's BackBroker (paper trading) for a feed's position enters
        it in the account's value, which then reads its close[0] -- an
        IndexError while a slower feed (a 4h beside a 1h) has no bar yet."""
        return [(symbol, data) for symbol, data in self._holders if len(data)]

    def _snapshot(self, at):
        broker = self.strategy.broker
        for symbol, data in self._priced():
            pos = broker.getposition(data)
            self._journal.record('snapshots', kind='position', name=symbol,
                                 size=pos.size, price=pos.price, at=at)
        self._journal.record('snapshots', kind='balance', name='cash', size=broker.getcash(),
                             price=None, at=at)

    def _risk_events(self, at):
        """New RiskAnalyzer alerts, then the kill switch if it changed (the
        cause before its effect). Each bar this is two cheap tests: the
        analyzer's breaches and whether the switch holds anything."""
        risk = self._risk
        if risk is not None:
            breaches = risk.breaches
            if breaches != self._breaches:
                self._breaches = breaches
                self._new_alerts(at)
        switch = getattr(self.strategy.broker, 'kill_switch', None)
        if switch is None or (not switch.armed and not self._kill):
            return
        active = sorted(switch.active())
        if active != self._kill:
            self._journal.record('risk_events', kind='kill_switch', type=None, value=None,
                                 limit=None, active=active,
                                 message='kill switch: %s' % (', '.join(active) or 'off'),
                                 at=at)
            self._kill = active

    def _new_alerts(self, at):
        for alert in self._risk.get_analysis()['risk_alerts']:
            if id(alert) in self._alerts_seen:
                continue
            self._alerts_seen.add(id(alert))
            self._journal.record('risk_events', kind='alert', type=alert.get('type'),
                                 value=alert.get('value'), limit=alert.get('limit'),
                                 active=None, message=alert.get('message'),
                                 at=_aware_naive(alert.get('timestamp')) or at)


def _aware_naive(value):
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None)
    return None


def attach(cerebro, journal, exchange=''):
    """Record ``cerebro``'s next run in ``journal`` (started with start_run)."""
    cerebro.addanalyzer(JournalAnalyzer, journal=journal, exchange=exchange,
                        _name='journal')

    def on_data(data, status, *args, **kwargs):
        journal.record('stream_events', source='data',
                       name=getattr(data, '_name', None) or str(data.p.dataname),
                       status=data._getstatusname(status),
                       message=' '.join(str(a) for a in args) or None, at=utcnow())

    def on_store(msg, *args, **kwargs):
        text = str(msg) if not args else '%s %s' % (msg, ' '.join(map(str, args)))
        error = isinstance(msg, BaseException) or 'error' in text.lower()
        journal.record('stream_events', source='error' if error else 'store',
                       name=type(msg).__name__, status=None, message=text[:2000],
                       at=utcnow())

    cerebro.adddatacb(on_data)
    cerebro.addstorecb(on_store)
    return journal
