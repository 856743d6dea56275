"""Timeframe strings ('1h') to backtrader timeframes and milliseconds."""
from backtrader import TimeFrame

from .errors import ConfigError

_MIN = 60_000
# name -> (backtrader timeframe, compression, nominal length in ms)
TIMEFRAME_SPECS = {
    '1m': (TimeFrame.Minutes, 1, _MIN),
    '3m': (TimeFrame.Minutes, 3, 3 * _MIN),
    '5m': (TimeFrame.Minutes, 5, 5 * _MIN),
    '15m': (TimeFrame.Minutes, 15, 15 * _MIN),
    '30m': (TimeFrame.Minutes, 30, 30 * _MIN),
    '1h': (TimeFrame.Minutes, 60, 60 * _MIN),
    '2h': (TimeFrame.Minutes, 120, 120 * _MIN),
    '4h': (TimeFrame.Minutes, 240, 240 * _MIN),
    '6h': (TimeFrame.Minutes, 360, 360 * _MIN),
    '8h': (TimeFrame.Minutes, 480, 480 * _MIN),
    '12h': (TimeFrame.Minutes, 720, 720 * _MIN),
    '1d': (TimeFrame.Days, 1, 1440 * _MIN),
    '3d': (TimeFrame.Days, 3, 3 * 1440 * _MIN),
    '1w': (TimeFrame.Weeks, 1, 7 * 1440 * _MIN),
    # A month has no fixed length; 31 days is only used as an upper bound.
    '1M': (TimeFrame.Months, 1, 31 * 1440 * _MIN),
}

# The roadmap's map: exchange name -> a spelled-out name ('1m' -> '1min').
_UNITS = {'m': 'min', 'h': 'hour', 'd': 'day', 'w': 'week', 'M': 'month'}
TIMEFRAME_MAP = {name: name[:-1] + _UNITS[name[-1]] for name in TIMEFRAME_SPECS}


def parse_timeframe(tf, supported=None):
    """Validate ``tf`` and return (timeframe, compression, ms).

    ``supported`` narrows the accepted names to what one exchange serves.
    """
    valid = [k for k in TIMEFRAME_SPECS if supported is None or k in supported]
    if not isinstance(tf, str) or tf not in valid:
        raise ConfigError('unknown timeframe %r; valid timeframes: %s'
                          % (tf, ', '.join(valid)))
    return TIMEFRAME_SPECS[tf]
