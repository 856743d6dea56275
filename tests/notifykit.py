"""Real local servers and helpers for the notification tests.

Every server here is a context manager that stops its thread and closes its
sockets on exit; waiting is on conditions with a bounded timeout.
"""
import contextlib
import datetime
import http.server
import json
import socket
import ssl
import threading

from helpers import eventually


class Collector:
    """A notification callback that records what it gets, in order."""

    def __init__(self):
        self.items = []
        self._cond = threading.Condition()

    def __call__(self, notification):
        with self._cond:
            self.items.append(notification)
            self._cond.notify_all()

    def wait(self, count, timeout=5.0):
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.items) >= count, timeout)
        assert ok, 'got %d of %d notifications: %r' % (len(self.items), count, self.items)
        return list(self.items)

    def texts(self):
        return [str(n) for n in self.items]

    def of_kind(self, kind):
        return [n for n in self.items if n.kind == kind]


class Blocker:
    """A callback that blocks until released (a hung channel), then records."""

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Event()
        self.items = []

    def __call__(self, notification):
        self.entered.set()
        self.release.wait(10)
        self.items.append(notification)


# -- HTTP ----------------------------------------------------------------------------
class HttpRecorder:
    """A local HTTP server recording each request (path, headers, JSON body).

    ``statuses`` are answered in order (then 200); 'hang' holds the response
    until the server closes. ``headers`` are sent with non-200 answers.
    """

    def __init__(self, statuses=(), headers=None, tls=None):
        self.requests = []
        self._statuses = list(statuses)
        self._headers = headers or {}
        self._cond = threading.Condition()
        self._closing = threading.Event()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                recorder._handle(self)

            def log_message(self, *args):   # keep test output quiet
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = 'http%s://127.0.0.1:%d' % ('s' if tls else '', self.port)
        if tls:
            # tls: (cert path, key path) -> an HTTPS server with that certificate
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={'poll_interval': 0.05}, name='test-http')

    def _handle(self, handler):
        length = int(handler.headers.get('Content-Length') or 0)
        raw = handler.rfile.read(length)
        with self._cond:
            status = self._statuses.pop(0) if self._statuses else 200
            self.requests.append({'path': handler.path, 'headers': dict(handler.headers),
                                  'json': json.loads(raw or b'null'), 'status': status,
                                  'at': datetime.datetime.now()})
            self._cond.notify_all()
        if status == 'hang':
            self._closing.wait(10)
            return
        handler.send_response(status)
        for name, value in (self._headers.items() if status != 200 else ()):
            handler.send_header(name, value)
        handler.send_header('Content-Length', '2')
        handler.end_headers()
        handler.wfile.write(b'ok')

    def wait(self, count, timeout=5.0):
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.requests) >= count, timeout)
        assert ok, 'got %d of %d requests' % (len(self.requests), count)
        return list(self.requests)

    def bodies(self):
        return [r['json'] for r in self.requests]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
        return False


@contextlib.contextmanager
def silent_port():
    """A port that accepts connections but never answers (a hung server).

    The kernel completes the TCP handshake for the listen backlog, so a
    client connects, sends, and then waits until its own read timeout.
    """
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def refused_port():
    """A port nobody listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# -- TLS and SMTP ----------------------------------------------------------------------
def self_signed(directory):
    """(cert path, key path, client SSLContext trusting it) for 127.0.0.1."""
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'localhost')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName('localhost'), x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / 'cert.pem', directory / 'key.pem'
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    client = ssl.create_default_context(cafile=str(cert_path))
    return cert_path, key_path, client


class SmtpRecorder:
    """A real SMTP server (aiosmtpd) that records messages and logins.

    ``tls``: None (plain), 'starttls' (required before AUTH and MAIL) or 'ssl'
    (implicit TLS). ``login``: (user, password) to require authentication.
    """

    def __init__(self, tls=None, login=None, cert=None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages = []
        self.auth_attempts = []
        self._cond = threading.Condition()
        recorder = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                import email
                import email.policy
                parsed = email.message_from_bytes(envelope.original_content,
                                                  policy=email.policy.default)
                with recorder._cond:
                    recorder.messages.append({'from': envelope.mail_from,
                                              'to': list(envelope.rcpt_tos),
                                              'message': parsed, 'user': session.auth_data})
                    recorder._cond.notify_all()
                return '250 OK'

        def authenticator(server, session, envelope, mechanism, auth_data):
            user = auth_data.login.decode()
            password = auth_data.password.decode()
            recorder.auth_attempts.append(user)
            ok = login is not None and (user, password) == tuple(login)
            # handled=False: let the server answer 535 itself on a failure
            return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

        kwargs = {}
        if tls is not None:
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain(str(cert[0]), str(cert[1]))
            if tls == 'ssl':
                kwargs['ssl_context'] = server_ctx
            else:
                kwargs.update(tls_context=server_ctx, require_starttls=True)
        if login is not None:
            kwargs.update(authenticator=authenticator, auth_required=True,
                          auth_require_tls=tls == 'starttls')
        self.port = refused_port()
        self.controller = Controller(Handler(), hostname='127.0.0.1', port=self.port,
                                     **kwargs)

    def wait(self, count, timeout=5.0):
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.messages) >= count, timeout)
        assert ok, 'got %d of %d e-mails' % (len(self.messages), count)
        return list(self.messages)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
        return False


def bt_live_threads():
    """The notification threads still running."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith('bt-live-notify'))


__all__ = ['Collector', 'Blocker', 'HttpRecorder', 'SmtpRecorder', 'silent_port',
           'refused_port', 'self_signed', 'eventually', 'bt_live_threads']
