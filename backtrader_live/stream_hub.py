"""The stream hub role of a store: market and user streams, one of each.

Owns the two websocket streams (stream.py) of a store, their subscriptions
(bar topics and their callbacks, user-event listeners), their state and
liveness (heartbeat, stale watchdog), the resubscription after every
reconnect, and the feeds to wake when a broker event waits.

What differs per exchange (URLs, subscribe payloads, parsers, pings, the
login) is asked of the store (its *owner*): exchange modules override those
hooks on their store class, and the profile declares the ping as data.
"""
import logging
import threading
import time

from .errors import FatalError, LiveError
from .events import SUBSCRIBED
from .stream import LIVE, RECONNECTING, WsStream

log = logging.getLogger(__name__)


class StreamHub:
    """The market stream (bars) and the user stream (orders, balances) of a store."""

    def __init__(self, owner, lock):
        self._owner = owner
        self.lock = lock
        self.market_stream = None
        self.user_stream = None
        self.bar_subs = {}           # topic -> list of (callback, on_state)
        self.user_listeners = []
        self.feeds = []              # feeds to wake on broker events
        self.market_opened = False   # the market connection's on_open sent the topics
        self.last_resync = -1e9      # monotonic time of the last login resync
        # The user stream's subscription was sent and the exchange has not
        # confirmed it yet: its account events may go to no one meanwhile, so
        # the stream is not LIVE to the broker until the answer comes.
        self.user_confirming = False
        self._live_deferred = None   # the ``reconnected`` of a LIVE held for that answer
        # set once the user stream carries events or has failed (start-up wait)
        self.user_settled = threading.Event()

    # -- market data stream -------------------------------------------------
    def subscribe_bars(self, symbol, timeframe, callback, on_state=None):
        owner = self._owner
        topic = owner.bar_topic(symbol, timeframe)
        with self.lock:
            self.bar_subs.setdefault(topic, []).append((callback, on_state))
            if self.market_stream is None:
                self.market_stream = self._stream(
                    'market', owner.market_ws_url(), owner._on_market_message,
                    owner._on_market_open, owner._on_market_state, owner.ws_app_ping(),
                    skip=owner.STREAM_FORMING)
                self.market_stream.start()
            elif self.market_opened:
                # the connection's on_open has sent the topics it knew: this
                # one goes now. (Checking ``is_live`` lost a topic added
                # between that on_open and the LIVE state: 20 feeds starting
                # at once hit it, and one symbol never got a bar.)
                self._send_topic(topic)
        return topic

    def _send_topic(self, topic):
        try:
            self.market_stream.send(self._owner.subscribe_message([topic]))
        except Exception as exc:    # dropped meanwhile: the reconnect's on_open sends it
            log.warning('subscribing to %s failed (%s); it is sent again on reconnect',
                        topic, exc)

    def on_market_open(self, stream):
        # under the lock: a topic subscribed meanwhile is in this list or sent
        # by subscribe_bars after it (market_opened), never neither
        with self.lock:
            topics = list(self.bar_subs)
            if topics:
                stream.send(self._owner.subscribe_message(topics))
            self.market_opened = True

    def on_market_message(self, msg):
        for topic, bar in self._owner.parse_market_message(msg):
            for callback, _ in self.bar_subs.get(topic, ()):
                callback(bar)

    def on_market_state(self, state, reconnected):
        if state != LIVE:
            with self.lock:
                self.market_opened = False      # the next on_open sends every topic
        for subs in list(self.bar_subs.values()):
            for _, on_state in subs:
                if on_state is not None:
                    on_state(state, reconnected)

    # -- user data stream ----------------------------------------------------
    def subscribe_user(self, listener):
        owner = self._owner
        if not owner.has_credentials:
            raise FatalError('the user-data stream needs an API key and secret')
        with self.lock:
            self.user_listeners.append(listener)
            if self.user_stream is None:
                self.user_stream = self._stream(
                    'user', owner.user_ws_url, owner._on_user_message,
                    self._open_user, owner._on_user_state,
                    owner.user_stream_ping() or owner.ws_app_ping())
                self.user_stream.start()

    def _open_user(self, stream):
        # the store's hook returns True when the exchange answers its
        # subscription (SUBSCRIBED): LIVE waits for that answer
        self.user_confirming = bool(self._owner.user_stream_open(stream))

    def on_user_message(self, msg):
        for event in self._owner.parse_user_message(msg):
            if event == SUBSCRIBED:
                self._user_confirmed()
                continue
            for listener in tuple(self.user_listeners):
                listener(event)
        if self.user_listeners:
            self.wake_feeds()

    def _user_confirmed(self):
        if not self.user_confirming:
            log.debug('a user-stream subscription answer with none awaited')
            return
        self.user_confirming = False
        reconnected, self._live_deferred = self._live_deferred, None
        self.on_user_state(LIVE, bool(reconnected))

    def on_user_state(self, state, reconnected):
        if state == LIVE and self.user_confirming:
            # told when the exchange confirms the subscription: a LIVE said
            # now would stop the REST poll while events still go nowhere
            self._live_deferred = reconnected
            return
        if state in (LIVE, RECONNECTING):
            self.user_settled.set()
        for listener in tuple(self.user_listeners):
            listener(('state', state, reconnected))
        self.wake_feeds()

    def login_refused(self, text, clock_errors):
        """The user stream's login was refused (``text``). A clock problem
        (one of ``clock_errors`` in the text) is fixed here: sync with the
        server, then reconnect to log in again (at most every 5 s, so a
        lasting refusal cannot become a loop). Returns the event to report."""
        self.user_settled.set()     # refused: no start-up wait for it
        if not any(s in text for s in clock_errors):
            return ('error', text)
        now = time.monotonic()
        if now - self.last_resync < 5.0:
            return ('error', text + ' (clock resynced moments ago: not retrying yet)')
        self.last_resync = now
        try:
            self._owner.sync_time()
        except LiveError as exc:
            return ('error', '%s; the clock resync failed: %s' % (text, exc))
        self.reconnect_user()
        return ('error', text + '; clock resynced, logging in again')

    def reconnect_user(self):
        """Drop the user stream's connection: it logs in and resubscribes anew."""
        if self.user_stream is not None:
            self.user_stream.reconnect()

    @property
    def user_stream_live(self):
        return (self.user_stream is not None and self.user_stream.state == LIVE
                and not self.user_confirming)

    def streams(self):
        return [s for s in (self.market_stream, self.user_stream) if s]

    # -- feeds and lifecycle -------------------------------------------------
    def add_feed(self, data):
        # identity: backtrader's data objects overload == (a lines operation)
        if data is not None and not any(f is data for f in self.feeds):
            self.feeds.append(data)

    def wake_feeds(self):
        """Let Cerebro's loop run now (a broker event is waiting)."""
        for feed in tuple(self.feeds):
            feed.wake()

    def stop(self):
        """Close both streams and join their threads (bounded)."""
        for stream in (self.market_stream, self.user_stream):
            if stream is not None:
                stream.stop()
        self.market_stream = self.user_stream = None
        self.market_opened = False
        self.user_confirming = False
        self._live_deferred = None
        self.user_settled.clear()
        self.bar_subs.clear()
        self.user_listeners.clear()
        self.feeds.clear()

    def _stream(self, role, url, on_message, on_open, on_state, ping, skip=None):
        owner, p = self._owner, self._owner.p
        # A stream silent this long pings, then reconnects (a dead peer).
        return WsStream('bt-live-%s-%s' % (owner.exchange_name, role), url, on_message,
                        on_open=on_open, on_state=on_state, ping=ping,
                        proxy=owner.ws_proxy_kwargs(), heartbeat=p.stream_heartbeat,
                        stale_after=p.stream_timeout, texts=owner.STREAM_TEXTS, skip=skip)
