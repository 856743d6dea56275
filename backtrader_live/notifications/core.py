"""What a notification is: its text, level, kind and data; levels; JSON data."""
import dataclasses
import datetime
import logging
import math

from ..errors import ConfigError

# The standard logging levels: a channel's threshold reads like a log filter.
LEVELS = {'DEBUG': logging.DEBUG, 'INFO': logging.INFO, 'WARNING': logging.WARNING,
          'ERROR': logging.ERROR, 'CRITICAL': logging.CRITICAL}
_ALIASES = {'WARN': 'WARNING', 'FATAL': 'CRITICAL'}

# The kinds the live layer emits on its own; users may use any other string.
ORDER, TRADE, DATA_STATUS, RISK_ALERT, STRATEGY, RUN_ERROR = (
    'order', 'trade', 'data_status', 'risk_alert', 'strategy', 'run_error')


def parse_level(level):
    """A logging level number from 'INFO', 'warning', logging.INFO or 20."""
    if isinstance(level, bool):
        raise ConfigError('notification level must be a name or a number, got %r' % (level,))
    if isinstance(level, int):
        return level
    if isinstance(level, str):
        name = level.strip().upper()
        name = _ALIASES.get(name, name)
        if name in LEVELS:
            return LEVELS[name]
    raise ConfigError('unknown notification level %r; use one of %s'
                      % (level, ', '.join(LEVELS)))


def level_name(level):
    """'INFO' for 20; 'Level 25' style names for numbers between the standard ones."""
    return logging.getLevelName(level)


class Notification(str):
    """One notification: a ``str`` (its text), plus what it is about.

    Being a ``str`` lets plain callbacks written for the original design
    (``fn(message)``) keep working; richer ones read the attributes:

    - ``message``: the text as triggered (``str(self)`` may add a note that
      similar notifications were suppressed)
    - ``level`` (a logging number) and ``levelname`` ('INFO', 'WARNING'...)
    - ``kind``: 'order', 'trade', 'data_status', 'risk_alert', 'strategy',
      'run_error' or whatever the caller passed (None if nothing)
    - ``data``: the structured payload (order fields, the risk alert...)
    - ``time``: when it was triggered (an aware UTC datetime)
    - ``suppressed``: how many identical ones de-duplication dropped before it
    """

    def __new__(cls, message, level=logging.INFO, kind=None, data=None, time=None,
                suppressed=0, interval=None):
        message = str(message)
        text = message
        if suppressed:
            # Say so: a reader must know the alert kept firing meanwhile.
            text = '%s (repeated %d more time%s within %gs)' % (
                message, suppressed, '' if suppressed == 1 else 's', interval or 0)
        self = super().__new__(cls, text)
        self.message = message
        self.level = level
        self.kind = kind
        self.data = data
        self.time = time or datetime.datetime.now(datetime.timezone.utc)
        self.suppressed = suppressed
        return self

    @property
    def levelname(self):
        return level_name(self.level)

    @property
    def text(self):
        return str.__str__(self)

    def title(self, prefix='backtrader_live', width=100):
        """A one-line subject: '<prefix> WARNING: first line of the text'."""
        first = self.text.splitlines()[0] if self.text else ''
        if len(first) > width:
            first = first[:width - 3] + '...'
        head = ('%s %s' % (prefix, self.levelname)).strip()
        return '%s: %s' % (head, first)

    def to_dict(self):
        """Everything as JSON-compatible values (webhooks, e-mail details)."""
        return {'text': self.text, 'message': self.message, 'level': self.levelname,
                'kind': self.kind, 'time': self.time.isoformat(),
                'suppressed': self.suppressed, 'data': to_jsonable(self.data)}

    def __reduce__(self):
        return (Notification, (self.message, self.level, self.kind, self.data, self.time,
                               self.suppressed))

    def __repr__(self):
        return 'Notification(%r, level=%s, kind=%r)' % (self.text, self.levelname, self.kind)


def to_jsonable(obj, _depth=0):
    """``obj`` as plain JSON values; anything unknown becomes its ``str``.

    Alerts carry dataclasses, datetimes and numpy/backtrader numbers: a
    webhook must never fail on a payload it cannot serialize.
    """
    if _depth > 8:
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    elif hasattr(obj, '_asdict'):
        obj = obj._asdict()
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v, _depth + 1) for v in obj]
    if hasattr(obj, 'item') and callable(obj.item):   # numpy scalars
        try:
            return to_jsonable(obj.item(), _depth + 1)
        except (TypeError, ValueError):
            pass    # not a plain scalar after all: its text will do
    return str(obj)
