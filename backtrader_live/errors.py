"""The one error map of the live layer.

ccxt raises a deep hierarchy of exception classes and websocket-client raises
its own; callers of the live layer only need to know *what to do next*:

==================  ==========================================================
class               what the caller does
==================  ==========================================================
RetryableError      retry with backoff (network blips, 5xx, maintenance)
RateLimitedError    retry after ``retry_after`` seconds (429/418, rate codes)
ClockSkewError      resync with the server time, then retry once
OrderRejected       final: the exchange refused the order (funds, filters...)
OrderNotFound       unknown, not rejected: reconcile by client order id
UnknownOutcome      a create may or may not have been accepted: query the
                    client order id before anything else, never resend
FatalError          stop with a clear message (bad keys, permissions, bad
                    symbol or configuration); never loop on these
==================  ==========================================================

``classify`` is the only place that knows ccxt's classes; every row of
``_CCXT_MAP`` is tested.
"""
import re

import ccxt

__all__ = ['LiveError', 'RetryableError', 'RateLimitedError', 'ClockSkewError',
           'OrderRejected', 'OrderNotFound', 'UnknownOutcome', 'FatalError',
           'AuthenticationFailed', 'ConfigError', 'classify', 'redact']


class LiveError(Exception):
    """Base of every error the live layer raises on purpose."""

    retryable = False

    def __init__(self, message, *, cause_name=None):
        super().__init__(message)
        self.cause_name = cause_name


class RetryableError(LiveError):
    retryable = True


class RateLimitedError(RetryableError):
    def __init__(self, message, *, retry_after=None, cause_name=None):
        super().__init__(message, cause_name=cause_name)
        self.retry_after = retry_after


class ClockSkewError(RetryableError):
    pass


class OrderRejected(LiveError):
    pass


class OrderNotFound(LiveError):
    pass


class UnknownOutcome(RetryableError):
    pass


class FatalError(LiveError):
    pass


class AuthenticationFailed(FatalError):
    pass


class ConfigError(ValueError):
    """Bad user input (exchange, symbol, timeframe, market type...).

    A ValueError so that plain ``except ValueError`` in user code catches it.
    """


# Most specific first: ccxt's OrderNotFound is a subclass of InvalidOrder,
# RateLimitExceeded of DDoSProtection, RequestTimeout of NetworkError...
_CCXT_MAP = (
    (ccxt.OrderNotFound, OrderNotFound),
    (ccxt.AuthenticationError, AuthenticationFailed),   # incl. PermissionDenied
    (ccxt.AccountSuspended, AuthenticationFailed),
    (ccxt.InvalidNonce, ClockSkewError),
    (ccxt.RateLimitExceeded, RateLimitedError),
    (ccxt.DDoSProtection, RateLimitedError),
    (ccxt.RequestTimeout, UnknownOutcome),
    (ccxt.InsufficientFunds, OrderRejected),
    (ccxt.InvalidOrder, OrderRejected),
    (ccxt.BadSymbol, FatalError),
    (ccxt.NotSupported, FatalError),
    (ccxt.BadRequest, OrderRejected),
    (ccxt.OnMaintenance, RetryableError),
    (ccxt.ExchangeNotAvailable, RetryableError),
    (ccxt.NetworkError, RetryableError),
    (ccxt.ExchangeError, OrderRejected),
)

# Signed query strings and long hex/base64 blobs must never reach a log line.
_SIGNATURE_RE = re.compile(r'(signature|sign|X-MBX-APIKEY|apiKey|api_key|secret)'
                           r'(["\']?\s*[=:]\s*["\']?)([^&"\'\s,}]+)', re.I)


def redact(text, secrets=()):
    """Remove signatures, key=value credentials and known secret strings."""
    text = _SIGNATURE_RE.sub(lambda m: m.group(1) + m.group(2) + '***', str(text))
    for secret in secrets:
        if secret:
            text = text.replace(secret, '***')
    return text


def _retry_after(exc):
    """Seconds from a Retry-After header ccxt kept on the exchange, if any."""
    headers = getattr(exc, 'headers', None) or {}
    value = headers.get('Retry-After') or headers.get('retry-after')
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def classify(exc, secrets=()):
    """Turn any exception from ccxt or the network into one of ours.

    Our own errors pass through unchanged; unknown exceptions become
    RetryableError only if they are OS-level network errors, else FatalError.
    The message is redacted so it can be logged and shown safely.
    """
    if isinstance(exc, LiveError):
        return exc
    message = redact('%s: %s' % (type(exc).__name__, exc), secrets)
    name = type(exc).__name__
    for ccxt_cls, ours in _CCXT_MAP:
        if isinstance(exc, ccxt_cls):
            if ours is RateLimitedError:
                return RateLimitedError(message, retry_after=_retry_after(exc),
                                        cause_name=name)
            return ours(message, cause_name=name)
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        return RetryableError(message, cause_name=name)
    return FatalError(message, cause_name=name)


# Upstream's errors (StrategySkipError...) stay reachable as bt.errors.X.
import backtrader.errors as _upstream_errors  # noqa: E402
from ._namespace import merge_into  # noqa: E402
merge_into(globals(), _upstream_errors)
