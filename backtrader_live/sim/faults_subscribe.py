"""A fault of the moments before an exchange acts on an account subscription.

A real exchange starts sending a connection the account's events only once it
has processed the subscription (Binance's WS-API
``userDataStream.subscribe.signature``, Bybit's private ``subscribe``), and
says so in its answer. An order placed in between has its events sent to no
one. Over loopback that window is a millisecond; this fault holds it open:
the simulator neither acts on nor answers such a subscription until released.
"""
import asyncio
import json


class SubscriptionHold:
    """Mixed into sim.faults.Faults (which provides ``_note``, ``_on_loop``
    and ``counts``)."""

    _sub_gate = None     # asyncio.Event while holding (the loop's thread only)

    def hold_user_subscriptions(self):
        """From now on keep every account subscription unprocessed and
        unanswered until :meth:`release_user_subscriptions`; the connection
        stays open (pongs pass). ``counts['user subscription held']``."""
        def run():
            if self._sub_gate is None:
                self._sub_gate = asyncio.Event()
        self._on_loop(run)
        self._note('user subscriptions held')

    def release_user_subscriptions(self):
        """Act on (and answer) the held subscriptions now, in arrival order."""
        def run():
            gate, self._sub_gate = self._sub_gate, None
            if gate is not None:
                gate.set()
        self._on_loop(run)
        self._note('user subscriptions released')

    async def user_subscription_gate(self):
        """Awaited by a venue before it acts on an account subscription."""
        gate = self._sub_gate
        if gate is None:
            return
        self.counts['user subscription held'] += 1
        await gate.wait()


def request_field(text, name):
    """Field ``name`` of a client's JSON request (None: not a JSON object)."""
    try:
        req = json.loads(text)
    except ValueError:
        return None
    return req.get(name) if isinstance(req, dict) else None
