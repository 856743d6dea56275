"""One asyncio loop in one named thread, for ccxt.pro's watchers.

ccxt.pro is asyncio; the rest of backtrader_live is threads. The store owns
one of these: watchers run as tasks on its loop, and their events cross into
the threads' world through the same callbacks the websocket-client streams
use. ``stop()`` sets the stop event, cancels the tasks, closes the ccxt.pro
clients (their sockets and HTTP sessions) and joins the thread, bounded.
"""
import asyncio
import logging
import threading

log = logging.getLogger(__name__)


class ProLoop:
    """An event loop running in thread ``name`` until ``stop()``."""

    def __init__(self, name):
        self.name = name
        self.stopping = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._tasks = set()
        self._closers = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    @property
    def alive(self):
        return self._thread.is_alive()

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.set_exception_handler(_quiet_network_errors)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def call(self, fn, *args, timeout=10.0):
        """Run plain ``fn(*args)`` on the loop's thread and return its result."""
        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def spawn(self, coro_fn, *args, name=None):
        """Start ``coro_fn(*args)`` as a task on the loop (thread-safe)."""
        def create():
            task = self._loop.create_task(coro_fn(*args), name=name)
            self._tasks.add(task)
            task.add_done_callback(self._finished)
        self._loop.call_soon_threadsafe(create)

    def _finished(self, task):
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error('%s: task %s ended: %r', self.name, task.get_name(), task.exception())

    def on_close(self, coro_fn):
        """``await coro_fn()`` when stopping (closes a ccxt.pro exchange)."""
        self._closers.append(coro_fn)

    async def sleep(self, seconds):
        """Sleep, or return early (True) once stopping."""
        step = 0.05
        waited = 0.0
        while waited < seconds:
            if self.stopping.is_set():
                return True
            await asyncio.sleep(min(step, seconds - waited))
            waited += step
        return self.stopping.is_set()

    def stop(self, timeout=5.0):
        """Cancel every task, close the clients, end and join the thread."""
        self.stopping.set()
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(timeout)
        except Exception as exc:   # the thread is still ended below
            log.warning('%s: shutdown incomplete: %r', self.name, exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error('%s did not stop within %.0fs', self.name, timeout)

    async def _shutdown(self):
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for close in self._closers:
            try:
                await close()
            except Exception as exc:   # closing a dead socket: nothing to keep
                log.debug('%s: close: %r', self.name, exc)
        await self._loop.shutdown_asyncgens()
        # aiohttp resolves host names in the loop's default executor: join its threads.
        await self._loop.shutdown_default_executor()


def _quiet_network_errors(loop, context):
    """ccxt.pro leaves a socket's failed futures unawaited when nobody was
    waiting on them (a reconnect attempt refused): asyncio would log each as an
    error. The watcher that retries has logged the failure already."""
    import ccxt
    if isinstance(context.get('exception'), ccxt.NetworkError):
        log.debug('%s', context.get('message'))
        return
    loop.default_exception_handler(context)


def connected(client):
    """True if one ccxt.pro socket is open (its ``connected`` future succeeded)."""
    fut = client.connected
    if not fut.done() or fut.cancelled() or fut.exception() is not None:
        return False
    closed = getattr(client, 'closed', None)
    return not (closed() if callable(closed) else closed)


def sockets(exchange):
    """The ccxt.pro exchange's sockets (it keeps bookkeeping entries in
    ``clients`` too: binance's 'authenticationFlights', never connected)."""
    return {url: c for url, c in exchange.clients.items() if '://' in str(url)}


def sockets_up(exchange):
    found = sockets(exchange)
    return bool(found) and all(connected(c) for c in found.values())


async def drop_dead(exchange):
    """Forget sockets that failed. ccxt.pro keeps a client whose handshake
    failed (it has ``error`` set) and hands it to the next watch, which then
    never resolves; and a reused client believes it is still subscribed."""
    for url, client in list(sockets(exchange).items()):
        if getattr(client, 'error', None) is not None or (
                client.connected.done() and not connected(client)):
            try:
                await client.close()
            except Exception as exc:   # already half closed: it is dropped anyway
                log.debug('closing %s: %r', url, exc)
            exchange.clients.pop(url, None)
