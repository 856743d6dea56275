"""Checks of ``run_live``'s arguments, before anything connects.

A wrong argument must fail at once with a message that names the problem and
what is accepted, not later as a raw ``TypeError`` from deep inside the
construction of a store, broker or feed, or as an exchange error from a URL
ccxt could not use.
"""
import difflib
import urllib.parse

from .errors import ConfigError


def check_endpoint(endpoint):
    """``endpoint`` is None or an absolute http(s) URL with a host."""
    if endpoint is None:
        return
    parsed = urllib.parse.urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parsed is None or parsed.scheme not in ('http', 'https') or not parsed.netloc:
        raise ConfigError('endpoint must be a base URL of the form http://host:port or '
                          'https://host[:port] (e.g. the simulator\'s sim.base_url, '
                          "'http://127.0.0.1:8080'), got %r" % (endpoint,))


def check_count(name, value, minimum):
    """An integer >= ``minimum`` (bools are no counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError('%s must be an integer >= %d, got %r' % (name, minimum, value))


def check_options(kind, given, cls, taken):
    """Each key of ``given`` (``broker_kwargs``...) is a parameter of ``cls``
    that run_live does not set itself (``taken``: {key: run_live's argument})."""
    valid = sorted(set(cls.params._getkeys()) - set(taken))
    for key in sorted(given or {}):
        if key in taken:
            raise ConfigError('%s: %r is set by run_live itself; pass it as run_live(%s=...)'
                              % (kind, key, taken[key]))
        if key not in valid:
            close = difflib.get_close_matches(key, valid + sorted(taken), n=1)
            hint = ''
            if close and close[0] in taken:
                hint = ' (did you mean run_live(%s=...)?)' % taken[close[0]]
            elif close:
                hint = ' (did you mean %r?)' % close[0]
            raise ConfigError('%s: unknown option %r%s; valid options of %s: %s'
                              % (kind, key, hint, cls.__name__, ', '.join(valid)))
