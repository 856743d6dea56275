"""Credentials: read from parameters or the environment, never shown."""
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


class Credentials:
    """An API key/secret pair whose repr and str never reveal the secret."""

    __slots__ = ('apikey', '_secret')

    def __init__(self, apikey=None, secret=None):
        self.apikey = apikey or None
        self._secret = secret or None

    @classmethod
    def resolve(cls, apikey, secret, env_prefix):
        """Explicit arguments win; else ``<PREFIX>_API_KEY``/``_API_SECRET``."""
        apikey = apikey or os.environ.get(env_prefix + '_API_KEY')
        secret = secret or os.environ.get(env_prefix + '_API_SECRET')
        return cls(apikey, secret)

    @property
    def secret(self):
        return self._secret

    def __bool__(self):
        return bool(self.apikey and self._secret)

    def key(self):
        """Identity for singletons/caches without holding the secret twice."""
        import hashlib
        digest = hashlib.sha256((self._secret or '').encode()).hexdigest()[:16]
        return (self.apikey, digest)

    def __repr__(self):
        return 'Credentials(apikey=%s, secret=%s)' % (
            mask(self.apikey), '***' if self._secret else '<none>')

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
