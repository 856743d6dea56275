"""Credentials: read from parameters or the environment, never shown."""
import hashlib
import logging
import os
import threading


def mask(value):
    """'abcd...wxyz' style mask: enough to tell keys apart, never the secret."""
    if not value:
        return '<none>'
    value = str(value)
    if len(value) <= 8:
        return '***'
    return value[:3] + '***' + value[-2:]


class Secret:
    """A passphrase: compared and hashed by digest, never shown."""

    __slots__ = ('_value',)

    def __init__(self, value):
        self._value = value or None

    @property
    def value(self):
        return self._value

    def _digest(self):
        return hashlib.sha256((self._value or '').encode()).hexdigest()[:16]

    def __eq__(self, other):
        return isinstance(other, Secret) and other._digest() == self._digest()

    def __hash__(self):
        return hash(self._digest())

    def __bool__(self):
        return bool(self._value)

    def __repr__(self):
        return '***' if self._value else '<none>'

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError('a passphrase cannot be pickled')


def resolve_password(value, env_prefix):
    """Explicit value wins; else ``<PREFIX>_API_PASSPHRASE`` or ``_API_PASSWORD``.

    OKX, KuCoin, Coinbase... sign with a passphrase besides key and secret
    (ccxt calls it ``password``); it is masked like the secret.
    """
    if isinstance(value, Secret):
        return value
    value = value or os.environ.get(env_prefix + '_API_PASSPHRASE') or \
        os.environ.get(env_prefix + '_API_PASSWORD')
    return Secret(value)


class Credentials:
    """An API key/secret (and optional passphrase) whose repr and str never
    reveal the secret or the passphrase."""

    __slots__ = ('apikey', '_secret', '_password')

    def __init__(self, apikey=None, secret=None, password=None):
        self.apikey = apikey or None
        self._secret = secret or None
        self._password = password if isinstance(password, Secret) else Secret(password)

    @classmethod
    def resolve(cls, apikey, secret, env_prefix, password=None):
        """Explicit arguments win; else ``<PREFIX>_API_KEY``/``_API_SECRET``
        (and ``_API_PASSPHRASE``/``_API_PASSWORD``)."""
        apikey = apikey or os.environ.get(env_prefix + '_API_KEY')
        secret = secret or os.environ.get(env_prefix + '_API_SECRET')
        return cls(apikey, secret, resolve_password(password, env_prefix))

    @property
    def secret(self):
        return self._secret

    @property
    def password(self):
        """The passphrase in clear (for ccxt), or None."""
        return self._password.value

    @property
    def masked_password(self):
        """The passphrase as a :class:`Secret` (safe to show, hash, compare)."""
        return self._password

    def __bool__(self):
        return bool(self.apikey and self._secret)

    def key(self):
        """Identity for singletons/caches without holding the secret twice."""
        digest = hashlib.sha256((self._secret or '').encode()).hexdigest()[:16]
        if not self._password:
            return (self.apikey, digest)
        return (self.apikey, digest, self._password._digest())

    def __repr__(self):
        extra = ', password=***' if self._password else ''
        return 'Credentials(apikey=%s, secret=%s%s)' % (
            mask(self.apikey), '***' if self._secret else '<none>', extra)

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError('Credentials cannot be pickled (they hold a secret)')


# Libraries we call log request headers and signed URLs at DEBUG (ccxt logs
# every request with its headers). Their records pass through this filter.
_NOISY_LOGGERS = ('ccxt.base.exchange', 'ccxt.verbose', 'urllib3.connectionpool', 'websocket')


class RedactingFilter(logging.Filter):
    """Rewrites log records so that no credential or signature survives."""

    def __init__(self):
        super().__init__()
        self._secrets = set()
        self._lock = threading.Lock()

    def add(self, *secrets):
        with self._lock:
            self._secrets.update(s for s in secrets if s)

    def filter(self, record):
        from .errors import redact
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging to report
            return True
        record.msg, record.args = redact(message, tuple(self._secrets)), None
        return True


_FILTER = RedactingFilter()


def install_log_redaction(*secrets):
    """Redact these secrets (and any signature) in third-party log records."""
    _FILTER.add(*secrets)
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
