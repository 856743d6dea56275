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
``_CCXT_MAP`` is tested. Where ccxt's class is not enough (on a local host
ccxt applies only its generic code table; Binance's -2015 turns into
DDoSProtection once a private call has succeeded) the exchange's own code
in the message decides: each store declares ``ERROR_CODES`` ({code: class}),
which ``classify`` consults first.
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
    """Our timestamp is outside the exchange's window: resync, retry once."""


class OrderRejected(LiveError):
    """The exchange (or our gate) refused the order; final."""


class OrderNotFound(LiveError):
    """The exchange does not know the order: unknown, not rejected."""


class UnknownOutcome(RetryableError):
    """A create may have been accepted: query the client id, never resend."""


class FatalError(LiveError):
    """Stop with a clear message: retrying cannot help."""


class AuthenticationFailed(FatalError):
    """Bad keys, signature or permissions: never loop on these."""


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
    # Binance -1001/-1006 "execution status unknown": not an exchange refusal
    (ccxt.OperationFailed, RetryableError),
)

# An exchange's error code in a ccxt message: Binance '{"code":-2019,...}',
# Bybit '{"retCode":10016,...}' (ccxt puts the raw body after the exchange id).
_CODE_RE = re.compile(r'"(?:code|retCode|ret_code)"\s*:\s*"?(-?\d+)')

# Signed query strings and long hex/base64 blobs must never reach a log line.
# A listenKey is a bearer credential for the account's private stream.
_SIGNATURE_RE = re.compile(r'(signature|sign|X-MBX-APIKEY|apiKey|api_key|secret|listenKey)'
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


def code_pattern(fields):
    """The regex finding an exchange's error code: the JSON field names it
    uses in an error body (an exchange profile's ``error_code_fields``)."""
    return re.compile(r'"(?:%s)"\s*:\s*"?(-?\d+)' % '|'.join(map(re.escape, fields)))


def exchange_code(exc, fields=None):
    """The exchange's own error code in a ccxt error message, as a string.

    ``fields``: the JSON field names of the code (None: the ones we know)."""
    match = (code_pattern(fields) if fields else _CODE_RE).search(str(exc))
    return match.group(1) if match else None


def classify(exc, secrets=(), codes=None, retry_after=None, code_fields=None):
    """Turn any exception from ccxt or the network into one of ours.

    Our own errors pass through unchanged. ``codes`` ({exchange code: our
    class}, the store's ``ERROR_CODES``) wins over ccxt's class; unknown
    exceptions become RetryableError only if they are OS-level network
    errors, else FatalError. ``retry_after``: seconds the server asked for
    (from response headers) when the exception does not carry them;
    ``code_fields``: where the exchange's code sits in its error body. The
    message is redacted so it can be logged and shown safely.
    """
    if isinstance(exc, LiveError):
        return exc
    message = redact('%s: %s' % (type(exc).__name__, exc), secrets)
    name = type(exc).__name__
    ours = codes.get(exchange_code(exc, code_fields)) if codes else None
    if ours is None:
        ours = next((o for c, o in _CCXT_MAP if isinstance(exc, c)), None)
    if ours is None:
        network = isinstance(exc, (OSError, TimeoutError, ConnectionError))
        ours = RetryableError if network else FatalError
    if issubclass(ours, RateLimitedError):
        wait = _retry_after(exc)
        return ours(message, retry_after=retry_after if wait is None else wait,
                    cause_name=name)
    return ours(message, cause_name=name)


# Upstream's errors (StrategySkipError...) stay reachable as bt.errors.X.
import backtrader.errors as _upstream_errors  # noqa: E402
from ._namespace import merge_into  # noqa: E402
merge_into(globals(), _upstream_errors)
