"""The one error map (every row) and the one backoff helper."""
import threading

import ccxt
import pytest
from hypothesis import given, strategies as st

from backtrader_live import errors as E
from backtrader_live.backoff import Backoff

ROWS = [
    (ccxt.OrderNotFound('x'), E.OrderNotFound),
    (ccxt.AuthenticationError('x'), E.AuthenticationFailed),
    (ccxt.PermissionDenied('x'), E.AuthenticationFailed),
    (ccxt.AccountSuspended('x'), E.AuthenticationFailed),
    (ccxt.InvalidNonce('x'), E.ClockSkewError),
    (ccxt.RateLimitExceeded('x'), E.RateLimitedError),
    (ccxt.DDoSProtection('x'), E.RateLimitedError),
    (ccxt.RequestTimeout('x'), E.UnknownOutcome),
    (ccxt.InsufficientFunds('x'), E.OrderRejected),
    (ccxt.InvalidOrder('x'), E.OrderRejected),
    (ccxt.BadSymbol('x'), E.FatalError),
    (ccxt.NotSupported('x'), E.FatalError),
    (ccxt.BadRequest('x'), E.OrderRejected),
    (ccxt.OnMaintenance('x'), E.RetryableError),
    (ccxt.ExchangeNotAvailable('x'), E.RetryableError),
    (ccxt.NetworkError('x'), E.RetryableError),
    (ccxt.ExchangeError('x'), E.OrderRejected),
    (ccxt.OperationFailed('x'), E.RetryableError),       # Binance -1001
    (ccxt.BadResponse('x'), E.RetryableError),           # -1006: status unknown
    (ConnectionResetError('x'), E.RetryableError),
    (TimeoutError('x'), E.RetryableError),
    (KeyError('x'), E.FatalError),
]


@pytest.mark.parametrize('exc,expected', ROWS, ids=lambda v: type(v).__name__)
def test_every_row_of_the_map(exc, expected):
    mapped = E.classify(exc)
    assert type(mapped) is expected
    assert mapped.cause_name == type(exc).__name__


def test_every_ccxt_row_is_tested():
    tested = {type(exc) for exc, _ in ROWS}
    assert {cls for cls, _ in E._CCXT_MAP} <= tested


def test_retryable_flags():
    assert E.classify(ccxt.NetworkError('x')).retryable
    assert E.classify(ccxt.RequestTimeout('x')).retryable      # but never resent
    assert not E.classify(ccxt.InsufficientFunds('x')).retryable
    assert not E.classify(ccxt.AuthenticationError('x')).retryable


def test_our_errors_pass_through():
    err = E.OrderRejected('nope')
    assert E.classify(err) is err


def test_retry_after_is_read_from_headers():
    exc = ccxt.DDoSProtection('429')
    exc.headers = {'Retry-After': '7'}
    assert E.classify(exc).retry_after == 7.0
    exc.headers = {'Retry-After': 'soon'}
    assert E.classify(exc).retry_after is None


def test_messages_are_redacted():
    secret = 'S3CR3T-value-123'
    exc = ccxt.NetworkError('binance GET http://x/api/v3/account?timestamp=1&signature=abcdef0123 '
                            'failed for ' + secret)
    text = str(E.classify(exc, secrets=(secret,)))
    assert 'abcdef0123' not in text and secret not in text and 'signature=***' in text


def test_redact_key_value_forms():
    text = E.redact('{"apiKey": "AAAA", "secret": "BBBB"} X-MBX-APIKEY=CCCC')
    assert 'AAAA' not in text and 'BBBB' not in text and 'CCCC' not in text


def test_config_error_is_a_value_error():
    assert issubclass(E.ConfigError, ValueError)


@given(st.integers(min_value=0, max_value=50), st.floats(0.01, 5), st.floats(1, 4),
       st.floats(5, 60))
def test_backoff_delay_is_bounded(attempt, base, factor, cap):
    b = Backoff(base=base, factor=factor, cap=cap)
    d = b.delay(attempt)
    assert 0 < d <= cap
    assert d <= base * factor ** attempt + 1e-9


@given(st.floats(0, 100))
def test_backoff_honours_retry_after(retry_after):
    assert Backoff(base=0.1, cap=1.0).delay(0, retry_after=retry_after) >= retry_after


def test_backoff_validation_and_exhaustion():
    with pytest.raises(ValueError, match='cap >= base'):
        Backoff(base=2, cap=1)
    b = Backoff(max_attempts=2)
    assert not b.exhausted(1) and b.exhausted(2)
    assert not Backoff().exhausted(10 ** 6)


def test_backoff_wait_is_cancelled_by_the_stop_event():
    stop = threading.Event()
    stop.set()
    assert Backoff(base=30, cap=60).wait(5, stop) is True
    assert Backoff(base=0.001, cap=0.002).wait(0) is False
