"""The private streams of ccxt.pro as the broker's user-data events.

``watch_orders``, ``watch_my_trades``, ``watch_balance`` and
``watch_positions`` each run as one task; what they return (ccxt's unified
dicts) becomes the events the native streams produce (events.py), handed to
the store's user listeners. The stream counts as LIVE while every ccxt.pro
socket is connected and no watch is failing; a return to LIVE after a
failure is reported as ``reconnected`` so the broker reconciles over REST
what it may have missed. Channels the exchange lacks are not watched: the
broker polls REST instead (``user_stream_live`` is False without orders and
fills both streamed).
"""
import asyncio
import dataclasses
import logging

from ..backoff import Backoff
from ..errors import ClockSkewError, classify
from ..events import (BalanceUpdate, OPEN, OrderUpdate, fill_from_ccxt, order_from_ccxt,
                      position_from_ccxt)
from ..markets import SPOT
from ..stream import CONNECTING, LIVE, RECONNECTING
from . import profile
from .loop import drop_dead, sockets_up

log = logging.getLogger(__name__)

TICK = 0.25
HOLD = 2.0       # seconds a re-made watch must stand before it counts as working


def order_events(store, orders):
    return [order_from_ccxt(o, 'stream', store.EXPIRED_WHEN) for o in orders]


def trade_events(store, trades):
    """Each trade as a fill of its order (known by the exchange's order id)."""
    return [OrderUpdate(client_id=t.get('clientOrderId') or None, exchange_id=str(t['order']),
                        symbol=t.get('symbol'), status=OPEN, fills=[fill_from_ccxt(t)],
                        timestamp=t.get('timestamp'), source='stream')
            for t in trades if t.get('id') and t.get('order')]


def balance_events(store, balance):
    """Spot: free and used per coin. Derivatives: the wallet (ccxt's total)."""
    out = {}
    for asset, row in balance.items():
        if asset in ('info', 'free', 'used', 'total', 'timestamp', 'datetime') or \
                not isinstance(row, dict) or row.get('total') is None:
            continue
        if store.kind == SPOT:
            out[asset] = (float(row.get('free') or 0.0), float(row.get('used') or 0.0))
        else:
            out[asset] = (float(row['total']), 0.0)
    return [BalanceUpdate(out, balance.get('timestamp'))] if out else []


def position_events(store, positions):
    return [dataclasses.replace(position_from_ccxt(p), source='stream') for p in positions
            if p.get('symbol')]


# ccxt capability, ccxt.pro method, converter
CHANNELS = (('watchOrders', 'watch_orders', order_events),
            ('watchMyTrades', 'watch_my_trades', trade_events),
            ('watchBalance', 'watch_balance', balance_events),
            ('watchPositions', 'watch_positions', position_events))


class UserStreams:
    """The private channels of one ccxt.pro client, run on ``loop``."""

    def __init__(self, store, client, loop, emit, on_state, renew=None, settled=None):
        self.store, self.client, self.loop = store, client, loop
        # set once a watch answers or fails: the broker's start-up wait ends
        # (a first connection that fails stays CONNECTING, not RECONNECTING)
        self.settled = settled
        self.renew = renew      # () -> a fresh ccxt.pro client (on the loop's thread)
        self.emit, self.on_state = emit, on_state
        self.channels = [c for c in CHANNELS if profile.has_stream(store.ccxt_id, c[0])
                         and not (c[0] == 'watchPositions' and store.kind == SPOT)]
        self.failing = set()
        self.state = CONNECTING
        self.broken = False
        self.backoff = Backoff(base=0.25, cap=5.0)
        self.restart_asked = False

    @property
    def complete(self):
        """Orders and fills both streamed: the broker need not poll."""
        names = {c[0] for c in self.channels}
        return {'watchOrders', 'watchMyTrades'} <= names

    def start(self):
        if self.channels:
            self.loop.spawn(self._supervise, name='user-streams')

    def resubscribe(self):
        """Log in and subscribe again (thread-safe): after a clock resync, a
        subscription signed on the old clock may have been refused, which
        ccxt.pro does not report: its watch just never answers."""
        self.restart_asked = True

    async def _supervise(self):
        """One task per channel, kept running; LIVE while every socket is
        open and no watch fails; a restart when asked."""
        tasks = {}
        try:
            while not self.loop.stopping.is_set():
                for _, method, convert in self.channels:
                    if method not in tasks or tasks[method].done():
                        tasks[method] = asyncio.ensure_future(self._watch(method, convert))
                if self.restart_asked:
                    self.restart_asked = False
                    await self._restart(tasks)
                self._set_state(LIVE if self._up() else RECONNECTING)
                if await self.loop.sleep(TICK):
                    break
        finally:
            await _cancel(tasks)

    async def _restart(self, tasks):
        log.info('%s user stream: subscribing again', self.store.exchange_name)
        self._set_state(RECONNECTING)
        await _cancel(tasks)
        tasks.clear()
        old = self.client
        if self.renew is not None:
            # A fresh client: after a refused subscription ccxt.pro's own state
            # (binance's in-flight authentication) can keep every new watch waiting.
            self.client = self.renew()
            await old.close()
        else:
            self.client.options['timeDifference'] = self.store.time_offset
            await self.client.close_ws_clients()

    async def _watch(self, method, convert):
        attempt = 0
        while not self.loop.stopping.is_set():
            # Asked again: no longer failing once this attempt has stood HOLD
            # seconds (a watch answers only with an event, which may be long in
            # coming; a refused login fails it within moments).
            task = asyncio.ensure_future(getattr(self.client, method)())
            try:
                done, _ = await asyncio.wait({task}, timeout=HOLD)
                if not done:
                    self.failing.discard(method)
                result = await task
            except asyncio.CancelledError:
                task.cancel()
                raise
            except Exception as exc:   # any ccxt/socket error: reconnect, never end
                self.failing.add(method)
                if self.settled is not None:
                    self.settled.set()
                log.warning('%s user stream %s: %r; reconnecting', self.store.exchange_name,
                            method, exc)
                await drop_dead(self.client)
                await self._clock(exc)
                if await self.loop.sleep(self.backoff.delay(attempt)):
                    return
                attempt += 1
                continue
            attempt = 0
            for event in convert(self.store, result):
                self.emit(event)

    async def _clock(self, exc):
        """A signed call (listenKey, login) refused for its timestamp: sync
        this client with the server's clock (and the store, whose REST client
        may have synced already: its offset is taken first)."""
        self.client.options['timeDifference'] = self.store.time_offset
        # ccxt.pro 4.5 binance: a refused ws-api subscription (InvalidNonce) is
        # masked by a KeyError raised while ccxt cleans it up; the cause is kept.
        causes = (exc, exc.__context__)
        if not any(c is not None and isinstance(classify(c, self.store.secrets()),
                                                ClockSkewError) for c in causes):
            return
        try:
            await self.client.load_time_difference()
        except Exception as err:   # the next failure tries again
            log.warning('%s: clock sync failed: %r', self.store.exchange_name, err)
            return
        self.store.time_offset = int(self.client.options.get('timeDifference') or 0)
        log.info('%s user stream: clock offset to the server is %d ms',
                 self.store.exchange_name, self.store.time_offset)
        # The other watches wait on the refused subscription forever: start over.
        self.restart_asked = True

    def _up(self):
        if self.failing:
            return False
        return sockets_up(self.client)

    def _set_state(self, state):
        if state == self.state or (state == RECONNECTING and self.state == CONNECTING):
            return
        reconnected = state == LIVE and self.broken
        self.broken = state == RECONNECTING or (self.broken and state != LIVE)
        self.state = state
        log.info('%s user stream: %s%s', self.store.exchange_name, state,
                 ' (reconnected)' if reconnected else '')
        self.on_state(state, reconnected)


async def _cancel(tasks):
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
