"""Credentials: read from parameters or the environment, never shown."""
import os


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
