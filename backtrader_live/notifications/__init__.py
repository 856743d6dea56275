"""Notifications people can rely on: callbacks, e-mail, webhooks, apprise.

Two ways in, the same machinery underneath::

    # the original design's interface
    bt.setup_external_notifications(cerebro, ['callback', 'email'], email_host=...,
                                    email_to='me@example.com')
    cerebro.add_notification_callback(print)

    # the object API
    cerebro.add_notification_channel(WebhookChannel('https://hooks.slack.com/...'))
    cerebro.add_notification_channel(AppriseChannel('tgram://BOTTOKEN/CHATID'))

Fills, rejections, closed trades, data status changes, risk alerts and a
run that dies are sent on their own; ``cerebro.trigger_notifications(message,
level='INFO', kind=None, data=None)`` sends anything else. Delivery happens
in background threads and never blocks or breaks the strategy; see
docs/notifications.md.
"""
from .analyzer import NotificationAnalyzer
from .apprise_channel import AppriseChannel     # imports apprise only when used
from .cerebro import METHODS, NotificationsMixin, setup_external_notifications
from .channels import (CallbackChannel, Channel, EmailChannel, LogChannel, WebhookChannel,
                       mask_url)
from .core import (DATA_STATUS, LEVELS, ORDER, RISK_ALERT, RUN_ERROR, STRATEGY, TRADE,
                   Notification, parse_level, to_jsonable)
from .dispatcher import Deduper, Notifier
from .formatting import describe_data_status, describe_order, describe_trade


__all__ = ['AppriseChannel', 'CallbackChannel', 'Channel', 'DATA_STATUS', 'Deduper',
           'EmailChannel', 'LEVELS', 'LogChannel', 'METHODS', 'Notification',
           'NotificationAnalyzer', 'NotificationsMixin', 'Notifier', 'ORDER', 'RISK_ALERT',
           'RUN_ERROR', 'STRATEGY', 'TRADE', 'WebhookChannel', 'describe_data_status',
           'describe_order', 'describe_trade', 'mask_url', 'parse_level',
           'setup_external_notifications', 'to_jsonable']
