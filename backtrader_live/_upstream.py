"""The backtrader internals the live layer leans on, checked at import.

backtrader is used unmodified (pinned to 1.9.78.123 in pyproject.toml), but
the store subclasses two of its internals:

- ``backtrader.store.MetaSingleton``: one instance per *class*. Our
  MetaLiveStore skips its ``__call__`` (``super(MetaSingleton, cls)``) so that
  uniqueness is per credentials and options (Store.get_instance) instead.
  That only works while MetaSingleton defines ``__call__`` itself and sits
  directly on MetaParams.
- ``backtrader.store.Store``: ``start()`` creates ``notifs`` and ``datas``
  that ``put_notification``/``get_notifications`` use.

Another backtrader version is warned about once; a missing internal fails
the import with a message naming it (tests/test_upstream_guard.py).
"""
import warnings

import backtrader
from backtrader.metabase import MetaParams
from backtrader.store import MetaSingleton, Store

TESTED_VERSIONS = ('1.9.78.123',)


def check_upstream(version=None):
    """Warn on an untested backtrader; raise ImportError if an internal is gone."""
    version = version or backtrader.__version__
    if version not in TESTED_VERSIONS:
        warnings.warn('backtrader_live is tested with backtrader %s, not %s: the store '
                      'relies on backtrader.store.MetaSingleton and Store internals '
                      '(backtrader_live/_upstream.py)' % (', '.join(TESTED_VERSIONS), version),
                      RuntimeWarning, stacklevel=2)
    missing = [what for what, ok in (
        ('MetaSingleton.__call__', '__call__' in vars(MetaSingleton)),
        ('MetaSingleton directly on MetaParams', MetaSingleton.__mro__[1] is MetaParams),
        ('Store.start', callable(getattr(Store, 'start', None))),
        ('Store.put_notification', callable(getattr(Store, 'put_notification', None))),
        ('Store.get_notifications', callable(getattr(Store, 'get_notifications', None))),
    ) if not ok]
    if missing:
        raise ImportError('backtrader %s lacks what backtrader_live builds on: %s; install '
                          'backtrader==%s' % (version, ', '.join(missing), TESTED_VERSIONS[0]))
    return True
