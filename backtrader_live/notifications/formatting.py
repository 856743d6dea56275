"""One wording for order, trade and data-status events.

LiveStrategy logs these and the notifications analyzer/Cerebro send them,
so a log line and a Telegram message about the same fill read the same.
Each function returns an ``Event`` (message, level, data, dedupe key) or
None for what is not worth reporting. Keys decide de-duplication: every
fill is unique, while a rejection repeated bar after bar, or a flapping
connection, is the same alert.
"""
import collections
import logging

from .core import level_name

Event = collections.namedtuple('Event', 'message level data key')

# backtrader order status name -> (our wording, level)
_ORDER_STATUS = {
    'Submitted': ('submitted', logging.DEBUG),
    'Accepted': ('accepted', logging.DEBUG),
    'Partial': ('partially filled', logging.INFO),
    'Completed': ('completed', logging.INFO),
    'Canceled': ('canceled', logging.INFO),
    'Expired': ('expired', logging.INFO),
    'Margin': ('rejected (not enough cash or margin)', logging.WARNING),
    'Rejected': ('rejected', logging.WARNING),
}

# data status name -> (message template, level); '{name}' is the data's name
_DATA_STATUS = {
    'DELAYED': ('{name}: loading history (DELAYED)', logging.DEBUG),
    'LIVE': ('{name}: data is LIVE', logging.INFO),
    'CONNECTED': ('{name}: connected', logging.INFO),
    'CONNBROKEN': ('{name}: connection lost (CONNBROKEN); reconnecting', logging.WARNING),
    'DISCONNECTED': ('{name}: data DISCONNECTED', logging.WARNING),
    'NOTSUBSCRIBED': ('{name}: not subscribed (NOTSUBSCRIBED)', logging.ERROR),
    'NOTSUPPORTED_TF': ('{name}: timeframe not supported', logging.ERROR),
}


def num(value):
    """Compact, exact enough for prices and crypto sizes: 4300.12, 0.00999."""
    if value is None:
        return '-'
    return format(float(value), '.8g')


def data_name(data):
    if data is None:
        return '?'
    return data._name or str(getattr(data.p, 'dataname', '?'))


def describe_order(order):
    """Event for a backtrader order notification."""
    status = order.getstatusname()
    wording, level = _ORDER_STATUS.get(status, (status.lower(), logging.INFO))
    side = 'BUY' if order.isbuy() else 'SELL'
    symbol = data_name(order.data)
    ex = order.executed
    reason = order.info.get('reject_reason') if order.info is not None else None
    data = {'ref': order.ref, 'status': status, 'side': side.lower(), 'symbol': symbol,
            'type': order.getordername(), 'size': abs(order.created.size),
            'price': order.created.price, 'executed_size': abs(ex.size),
            'executed_price': ex.price if ex.size else None, 'commission': ex.comm,
            'reason': reason}
    if status in ('Completed', 'Partial'):
        done = '%s %s %s @ %s' % (side, num(abs(ex.size)), symbol, num(ex.price))
        if status == 'Partial':
            done += ' (of %s)' % num(abs(order.created.size))
        message = '%s %s, commission %s' % (done, wording, num(ex.comm))
    else:
        message = '%s %s %s %s %s' % (side, num(abs(order.created.size)), symbol,
                                      order.getordername().lower(), wording)
        if ex.size:
            message += ' after filling %s @ %s' % (num(abs(ex.size)), num(ex.price))
        if reason:
            message += ': %s' % reason
    if status in ('Rejected', 'Margin'):
        # The same refusal over and over is one alert (see dedupe).
        key = ('order', status, side, symbol, abs(order.created.size), reason)
    else:
        key = ('order', order.ref, status, ex.size)
    return Event(message, level, data, key)


def describe_trade(trade):
    """Event for a closed trade (PnL with commission); opened ones at DEBUG."""
    symbol = data_name(trade.data)
    if trade.isclosed:
        message = ('Trade closed on %s: PnL %s, net %s after %s commission'
                   % (symbol, num(trade.pnl), num(trade.pnlcomm), num(trade.commission)))
        data = {'ref': trade.ref, 'symbol': symbol, 'status': 'closed', 'pnl': trade.pnl,
                'pnlcomm': trade.pnlcomm, 'commission': trade.commission,
                'entry_price': trade.price, 'bars': trade.barlen,
                'direction': 'long' if trade.long else 'short'}
        return Event(message, logging.INFO, data, ('trade', trade.ref, 'closed'))
    if trade.justopened:
        message = 'Trade opened on %s: %s %s @ %s' % (
            symbol, 'long' if trade.long else 'short', num(abs(trade.size)), num(trade.price))
        data = {'ref': trade.ref, 'symbol': symbol, 'status': 'open', 'size': trade.size,
                'price': trade.price}
        return Event(message, logging.DEBUG, data, ('trade', trade.ref, 'open'))
    return None


def describe_data_status(name, status, previous=None):
    """Event for a feed status change; LIVE after a break reads 'reconnected'."""
    reconnected = status in ('LIVE', 'DELAYED') and previous in ('CONNBROKEN', 'DISCONNECTED')
    if reconnected and status == 'LIVE':
        template, level = '{name}: reconnected, data is LIVE again', logging.INFO
    elif reconnected:
        # After an outage the missed bars are replayed first (feed.py): LIVE follows.
        template, level = ('{name}: reconnected, replaying missed bars (DELAYED)',
                           logging.INFO)
    else:
        template, level = _DATA_STATUS.get(status, ('{name}: data status %s' % status,
                                                    logging.WARNING))
    data = {'symbol': name, 'status': status, 'previous': previous, 'reconnected': reconnected}
    return Event(template.format(name=name), level, data,
                 ('data_status', name, status, reconnected))


__all__ = ['Event', 'describe_order', 'describe_trade', 'describe_data_status', 'num',
           'data_name', 'level_name']
