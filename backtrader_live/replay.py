"""``cerebro.replaydata`` on a live feed: backtrader's own Replayer, live.

In a backtest, ``replaydata(data, timeframe=TimeFrame.Minutes,
compression=60)`` over 1m data shows the strategy one 1h bar that every 1m
bar updates in place (``len(data)`` unchanged, the open fixed, high, low,
close and volume growing; ``next()`` runs on each update) until the hour
rolls. A live feed delivers closed klines; upstream's ``Replayer`` filter
runs over them unmodified, exactly as over a backtest's bars, with one
option set: ``boundoff``.

backtrader stamps a bar with its close time (the 1m bar of 10:04-10:05 at
10:05) and the Replayer closes a target bar on the base bar stamped on its
boundary. Our feeds stamp a bar with its open time (10:04): ``boundoff`` of
one base bar (in minutes) moves the Replayer's boundaries by exactly that,
so the same bars are grouped as over close-stamped candles, and the
strategy sees what a backtest shows, stamped one base bar earlier (the open
of the latest base bar). tests/test_replay.py guards this upstream
behaviour and compares live runs with upstream's replaydata.

What is accepted: ``timeframe=`` and ``compression=`` naming an intraday
timeframe the exchange serves (3m ... 12h; their bars divide the UTC day as
the exchange's klines do), at least the feed's and a multiple of it. A day
or longer is refused: backtrader's replay closes those bars at a session
end, where a backtest over close-stamped candles puts the day's last base
bar into the next day; no live stamping can match that.

History: a replayed feed's ``backfill_bars`` history is extended back to
the start of the replayed bar it begins in (:func:`whole_history`), so the
first bar the strategy sees is a whole one, as in a backtest over a longer
history. Everything else (time-ordered release beside other feeds, status
notifications, gap fills over REST) is the feed's own: the Replayer runs in
upstream's ``load()``, after the feed's ``_load`` delivered a closed bar.
"""
from backtrader import TimeFrame

from .errors import ConfigError
from .multifeed import requested
from .timeframes import TIMEFRAME_SPECS

_MIN = 60 * 1000


def targets(base_ms, supported=None):
    """The names a replay of a feed of ``base_ms`` bars may target: intraday
    timeframes the exchange serves (``supported``), at least the feed's and a
    multiple of it."""
    return [n for n, (tf, _, length) in TIMEFRAME_SPECS.items()
            if tf == TimeFrame.Minutes and (supported is None or n in supported)
            and length >= base_ms and length % base_ms == 0]


def target_timeframe(data, kwargs):
    """The timeframe name ('1h') ``replaydata(data, **kwargs)`` asks for."""
    timeframe, compression, names = requested(
        data, kwargs, 'replaydata', "upstream's Replayer runs with its defaults over the "
        'closed bars')
    valid = targets(data._tf_ms, getattr(data._store, 'TIMEFRAMES', None))
    where = 'valid targets for a %s feed: %s' % (data.p.tf, ', '.join(valid))
    name = names[0] if names else None
    if name is None or TIMEFRAME_SPECS[name][0] != TimeFrame.Minutes:
        known = isinstance(timeframe, int) and 0 < timeframe < len(TimeFrame.Names)
        shown = TimeFrame.Names[timeframe] if known else repr(timeframe)
        raise ConfigError(
            'replaydata(timeframe=%s, compression=%r) on a live feed: not an intraday '
            'timeframe %s serves; %s (TimeFrame.Minutes with compression 60 is 1h); a day '
            'or longer is not replayed live (backtrader ends those bars at a session end, '
            "not at a kline's close): cerebro.resampledata gives the exchange's closed "
            '1d bars' % (shown, compression,
                         getattr(data._store, 'exchange_name', 'the exchange'), where))
    length = TIMEFRAME_SPECS[name][2]
    if length < data._tf_ms:
        raise ConfigError("replaydata: %s is shorter than the feed's %s; %s"
                          % (name, data.p.tf, where))
    if name not in valid:
        raise ConfigError("replaydata: %s is not a multiple of the feed's %s; %s"
                          % (name, data.p.tf, where))
    return name


def run_live_target(replay, timeframes, supported):
    """``run_live(..., replay='1h')``: replaydata's keyword arguments for the
    feeds of the first timeframe (None: no replay), checked before anything
    starts, with replaydata's own rules."""
    if replay is None:
        return None
    valid = [n for n in TIMEFRAME_SPECS if supported is None or n in supported]
    if not isinstance(replay, str) or replay not in valid:
        raise ConfigError("replay must be one timeframe name the exchange serves ('1h': the "
                          'feeds of the first timeframe replayed to it), got %r; valid: %s'
                          % (replay, ', '.join(valid)))
    base = timeframes[0]
    shortest = min(timeframes, key=lambda tf: TIMEFRAME_SPECS[tf][2])
    if TIMEFRAME_SPECS[shortest][2] < TIMEFRAME_SPECS[base][2]:
        raise ConfigError('replay=%r replays the first timeframe, %s, and it must be the '
                          "shortest (here %s): put it first, timeframe=[%r, ...]"
                          % (replay, base, shortest, shortest))
    ok = targets(TIMEFRAME_SPECS[base][2], supported)
    if replay not in ok:
        raise ConfigError('replay=%r on %s feeds: valid targets for a %s feed: %s (a day or '
                          'longer is not replayed live: give it as a timeframe for the '
                          "exchange's closed bars)" % (replay, base, base, ', '.join(ok)))
    spec = TIMEFRAME_SPECS[replay]
    return dict(timeframe=spec[0], compression=spec[1])


def replayed_feed(data, kwargs, datas):
    """(feed, Replayer options, default name) for ``replaydata(data, **kwargs)``.

    A feed not in the run yet is replayed itself (as upstream does); one
    already in it gets a new live feed of the same stream (upstream would
    clone it; a clone is no live feed of ours: no orders, no time order)."""
    name = target_timeframe(data, kwargs)
    feed, default = data, None
    if any(data is d for d in datas):
        params = dict(data.p._getkwargs())
        for key in ('timeframe', 'compression', 'name'):
            params.pop(key, None)
        feed = type(data)(**params)
        feed._store = data._store
        default = '%s %s replayed' % (data.p.dataname, name)
    feed._replay_ms = TIMEFRAME_SPECS[name][2]
    spec = TIMEFRAME_SPECS[name]
    # one base bar in the Replayer's unit (minutes): see the module's docstring
    options = dict(timeframe=spec[0], compression=spec[1], boundoff=data._tf_ms // _MIN)
    return feed, options, default


def whole_history(feed, bucket_ms):
    """The last ``backfill_bars`` closed bars of ``feed``, extended back to
    the start of the replayed bar (``bucket_ms`` long) the first one is in."""
    count = feed.p.backfill_bars
    if not count:
        return []
    rows = feed.fetch_last(count + bucket_ms // feed._tf_ms - 1)
    if not rows:
        return rows
    start = rows[-count].open_time if len(rows) >= count else rows[0].open_time
    first = start // bucket_ms * bucket_ms
    return [r for r in rows if r.open_time >= first]


def check_run(datas):
    """A replayed live feed must be of the run's shortest timeframe: a longer
    feed's bars are released with the shorter bar that closes with them
    (feedgroup.py), and upstream's loop would take a replayed one's open
    stamp (08:00 for 08:00-12:00) as the round's time, ahead of that bar."""
    from .feed import DataBase
    feeds = [d for d in datas if isinstance(d, DataBase) and d.p.live]
    if not feeds:
        return
    shortest = min(feeds, key=lambda f: f._tf_ms)
    for feed in feeds:
        if feed.replaying and feed._tf_ms > shortest._tf_ms:
            raise ConfigError(
                'replaydata: the replayed feed %s (%s bars) is longer than the run\'s %s feed '
                '%s; replay a feed of the shortest timeframe (e.g. '
                'cerebro.replaydata(<the %s feed>, timeframe=..., compression=...))'
                % (feed._name or feed.p.dataname, feed.p.tf, shortest.p.tf,
                   shortest._name or shortest.p.dataname, shortest.p.tf))
