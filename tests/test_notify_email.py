"""E-mail against a real SMTP server (aiosmtpd): plain, STARTTLS and implicit
TLS with login; refusals that are final; a password that never shows."""
import json
import logging

import pytest

import backtrader_live as btl
from backtrader_live.backoff import Backoff
from backtrader_live.errors import ConfigError, FatalError, RetryableError
from backtrader_live.notifications import EmailChannel, Notification, Notifier
from notifykit import SmtpRecorder, refused_port, self_signed

# Implicit TLS is TLS, but aiosmtpd only counts STARTTLS as such and warns.
pytestmark = pytest.mark.filterwarnings('ignore:Requiring AUTH while not requiring TLS')

USER, PASSWORD = 'bot@example.com', 'smtp-Pa55w0rd-xyz'
FAST = dict(backoff=Backoff(base=0.01, cap=0.02))


@pytest.fixture(scope='module')
def tls(tmp_path_factory):
    return self_signed(tmp_path_factory.mktemp('tls'))


def _alert():
    return Notification('BUY 50 BTC/USDT market rejected: insufficient balance', logging.WARNING,
                        'order', {'ref': 3, 'reason': 'insufficient balance'})


def test_plain_smtp_receives_subject_and_body():
    with SmtpRecorder() as server:
        channel = EmailChannel('127.0.0.1', ['me@example.com', 'desk@example.com'],
                               sender='bot@example.com', port=server.port, security='none')
        with Notifier([channel]) as notifier:
            notifier.notify(_alert(), 'WARNING', 'order', _alert().data)
            (mail,) = server.wait(1)
    msg = mail['message']
    assert mail['from'] == 'bot@example.com'
    assert mail['to'] == ['me@example.com', 'desk@example.com']
    assert msg['Subject'] == ('[backtrader_live] WARNING: BUY 50 BTC/USDT market rejected: '
                              'insufficient balance')
    assert msg['To'] == 'me@example.com, desk@example.com' and msg['Message-ID']
    body = msg.get_content().replace('\r\n', '\n')     # SMTP carries CRLF
    head, data = body.split('\n\n', 1)[0], body.split('\n\n', 2)[2]
    assert head == 'BUY 50 BTC/USDT market rejected: insufficient balance'
    assert 'level: WARNING' in body and 'kind: order' in body
    assert json.loads(data) == {'reason': 'insufficient balance', 'ref': 3}


def test_starttls_with_login(tls, caplog):
    caplog.set_level(logging.DEBUG)
    cert, key, trusting = tls
    with SmtpRecorder(tls='starttls', login=(USER, PASSWORD), cert=(cert, key)) as server:
        channel = EmailChannel('127.0.0.1', 'me@example.com', port=server.port,
                               username=USER, password=PASSWORD, ssl_context=trusting,
                               subject_prefix='[bot]')
        channel.send(_alert())
        (mail,) = server.wait(1)
    assert mail['user'] == USER and mail['from'] == USER           # logged in, then sent
    assert mail['message']['Subject'].startswith('[bot] WARNING: BUY 50')
    assert PASSWORD not in caplog.text and PASSWORD not in repr(channel)
    assert 'password=***' in repr(channel)


def test_implicit_tls_with_login(tls):
    cert, key, trusting = tls
    with SmtpRecorder(tls='ssl', login=(USER, PASSWORD), cert=(cert, key)) as server:
        channel = EmailChannel('127.0.0.1', 'me@example.com', port=server.port,
                               username=USER, password=PASSWORD, security='ssl',
                               ssl_context=trusting)
        channel.send(_alert())
        assert server.wait(1)[0]['user'] == USER


def test_a_wrong_password_is_final_and_never_logged(tls, caplog):
    caplog.set_level(logging.DEBUG)
    cert, key, trusting = tls
    wrong = 'wrong-Pa55-abcdef'
    with SmtpRecorder(tls='starttls', login=(USER, PASSWORD), cert=(cert, key)) as server:
        channel = EmailChannel('127.0.0.1', 'me@example.com', port=server.port, username=USER,
                               password=wrong, ssl_context=trusting, name='mail', **FAST)
        with Notifier([channel]) as notifier:
            notifier.notify('fill')
            assert notifier.flush(10)
            assert notifier.stats()['mail']['failed'] == 1
        # One delivery attempt, not retried: smtplib's login itself tries each
        # mechanism the server offers (PLAIN, then LOGIN) once.
        assert server.auth_attempts == [USER, USER]
    assert 'SMTP refused: 535' in caplog.text and 'not retryable' in caplog.text
    assert wrong not in caplog.text


def test_an_untrusted_certificate_is_final(tls):
    cert, key, _ = tls
    with SmtpRecorder(tls='starttls', cert=(cert, key)) as server:
        channel = EmailChannel('127.0.0.1', 'me@example.com', sender='bot@example.com',
                               port=server.port, timeout=3)
        with pytest.raises(FatalError, match='certificate rejected'):
            channel.send(_alert())


def test_starttls_required_but_not_offered_is_final():
    with SmtpRecorder() as server:        # a server without TLS
        channel = EmailChannel('127.0.0.1', 'me@example.com', sender='bot@example.com',
                               port=server.port)
        with pytest.raises(FatalError, match='SMTP refused'):
            channel.send(_alert())


def test_an_unreachable_server_is_retried_then_reported(caplog):
    channel = EmailChannel('127.0.0.1', 'me@example.com', sender='bot@example.com',
                           port=refused_port(), security='none', retries=2, name='mail',
                           password=PASSWORD, **FAST)
    with Notifier([channel]) as notifier:
        notifier.notify('fill')
        assert notifier.flush(5)
        assert notifier.stats()['mail']['failed'] == 1
    assert 'notification channel mail failed (3 attempt(s))' in caplog.text
    assert 'ConnectionRefusedError' in caplog.text and PASSWORD not in caplog.text


@pytest.mark.parametrize('code,cls', [(451, RetryableError), (554, FatalError)])
def test_smtp_reply_codes_decide_retries(code, cls):
    import smtplib
    from backtrader_live.notifications.channels import _smtp_error
    assert isinstance(_smtp_error(smtplib.SMTPDataError(code, b'busy')), cls)
    refused = _smtp_error(smtplib.SMTPRecipientsRefused({'x@example.com': (550, b'no')}))
    assert isinstance(refused, FatalError) and 'x@example.com' in str(refused)
    assert isinstance(_smtp_error(smtplib.SMTPServerDisconnected('gone')), RetryableError)


@pytest.mark.parametrize('kwargs,match', [
    (dict(host='', recipients='a@b.c', sender='x@y.z'), 'SMTP host'),
    (dict(host='h', recipients=' , ', sender='x@y.z'), 'recipient'),
    (dict(host='h', recipients='a@b.c', sender='x@y.z', security='tls1'), 'security'),
    (dict(host='h', recipients='a@b.c'), 'sender address'),
])
def test_bad_email_settings_are_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        EmailChannel(**kwargs)


def test_setup_builds_an_email_channel_with_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv('BTL_SMTP_PASSWORD', PASSWORD)
    cerebro = btl.Cerebro()
    (channel,) = btl.setup_external_notifications(
        cerebro, ['email'], email_host='smtp.example.com', email_user=USER,
        email_to='me@example.com, you@example.com', email_level='WARNING')
    assert (channel.host, channel.port, channel.security) == ('smtp.example.com', 587,
                                                              'starttls')
    assert channel.recipients == ['me@example.com', 'you@example.com']
    assert channel.sender == USER and channel.level == logging.WARNING
    assert channel.secrets() == (PASSWORD,) and PASSWORD not in repr(cerebro.notifier)
    assert EmailChannel('h', 'a@b.c', sender='x@y.z', security='ssl').port == 465
