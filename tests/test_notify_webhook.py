"""HTTP webhooks against a real local HTTP server: payloads, retries, refusals,
a server that hangs, and tokens that never reach a log."""
import logging
import time

import pytest

from backtrader_live.backoff import Backoff
from backtrader_live.errors import ConfigError
from backtrader_live.notifications import CallbackChannel, Notifier, WebhookChannel, mask_url
from backtrader_live.notifications.channels import url_secrets
from notifykit import Collector, HttpRecorder, refused_port, self_signed, silent_port

TOKEN = 'T0KEN-s3cr3t-abcdef123456'
BEARER = 'Bearer hdr-s3cr3t-987654321'
FAST = dict(backoff=Backoff(base=0.01, cap=0.02))


def test_the_server_receives_the_json_payload():
    with HttpRecorder() as server:
        channel = WebhookChannel(server.url + '/hooks/' + TOKEN,
                                 headers={'Authorization': BEARER})
        with Notifier([channel]) as notifier:
            notifier.notify('BUY 0.01 BTC/USDT @ 42000 completed, commission 0.042', 'INFO',
                            'order', {'ref': 7, 'side': 'buy', 'price': 42000.0})
            (request,) = server.wait(1)
    assert request['path'] == '/hooks/' + TOKEN
    assert request['headers']['Authorization'] == BEARER
    assert request['headers']['Content-Type'] == 'application/json'
    body = request['json']
    assert body['text'] == body['content'] == body['message']
    assert body['text'] == 'BUY 0.01 BTC/USDT @ 42000 completed, commission 0.042'
    assert (body['level'], body['kind'], body['suppressed']) == ('INFO', 'order', 0)
    assert body['data'] == {'ref': 7, 'side': 'buy', 'price': 42000.0}
    assert body['time'].endswith('+00:00')


@pytest.mark.parametrize('fmt,expected', [
    ('slack', {'text': 'feed down'}),
    ('discord', {'content': 'feed down'}),
    (lambda n: {'msg': n.upper(), 'lvl': n.levelname}, {'msg': 'FEED DOWN', 'lvl': 'WARNING'}),
])
def test_slack_discord_and_custom_payloads(fmt, expected):
    with HttpRecorder() as server:
        with Notifier([WebhookChannel(server.url + '/x', fmt=fmt)]) as notifier:
            notifier.notify('feed down', 'WARNING')
            assert server.wait(1)[0]['json'] == expected


@pytest.mark.parametrize('url,fmt', [
    ('https://hooks.slack.com/services/T0/B0/XYZ', 'slack'),
    ('https://discord.com/api/webhooks/1/abc', 'discord'),
    ('https://example.org/hook', 'json'),
])
def test_auto_format_follows_the_host(url, fmt):
    from backtrader_live.notifications.channels import _FORMATS
    assert WebhookChannel(url).format is _FORMATS[fmt]


def test_server_errors_are_retried_until_delivered():
    with HttpRecorder(statuses=[500, 503]) as server:
        channel = WebhookChannel(server.url + '/h', name='hook', retries=3, **FAST)
        with Notifier([channel]) as notifier:
            notifier.notify('fill')
            assert notifier.flush(5)
            assert [r['status'] for r in server.requests] == [500, 503, 200]
            assert notifier.stats()['hook'] == {'sent': 1, 'failed': 0, 'dropped': 0,
                                                'queued': 0}


def test_retry_after_is_honoured():
    with HttpRecorder(statuses=[429], headers={'Retry-After': '0.3'}) as server:
        with Notifier([WebhookChannel(server.url + '/h', **FAST)]) as notifier:
            notifier.notify('fill')
            first, second = server.wait(2)
    assert (second['at'] - first['at']).total_seconds() >= 0.3


def test_client_errors_are_not_retried(caplog):
    with HttpRecorder(statuses=[400, 400]) as server:
        channel = WebhookChannel(server.url + '/h/' + TOKEN, name='hook', **FAST)
        with Notifier([channel]) as notifier:
            notifier.notify('fill')
            assert notifier.flush(5)
            assert len(server.requests) == 1 and notifier.stats()['hook']['failed'] == 1
    assert 'HTTP 400 (not retried)' in caplog.text


@pytest.mark.serial      # a latency/duration bound: alone, not beside other workers
def test_hung_and_refused_webhooks_neither_block_nor_starve_others(caplog):
    """The strategy's call returns at once; the healthy channels get every
    message; the bad ones fail after their timeout, logged without tokens."""
    caplog.set_level(logging.DEBUG)
    got = Collector()
    with silent_port() as hung_port, HttpRecorder() as good:
        hung = WebhookChannel('http://127.0.0.1:%d/h/%s' % (hung_port, TOKEN), name='hung',
                              timeout=0.5, retries=1, headers={'Authorization': BEARER}, **FAST)
        refused = WebhookChannel('http://127.0.0.1:%d/h/%s' % (refused_port(), TOKEN),
                                 name='refused', retries=2, **FAST)
        notifier = Notifier([hung, refused, WebhookChannel(good.url + '/ok'),
                             CallbackChannel(got)])
        durations = []
        for i in range(5):
            started = time.perf_counter()
            notifier.notify('tick %d' % i)
            durations.append(time.perf_counter() - started)
        got.wait(5)
        good.wait(5)
        assert max(durations) < 0.1          # a 0.5 s hang per attempt never shows here
        notifier.stop(0.3)                   # the hung one gives up what is left
    stats = notifier.stats()
    assert stats['refused'] == {'sent': 0, 'failed': 5, 'dropped': 0, 'queued': 0}
    assert stats['hung']['sent'] == 0 and stats['hung']['failed'] >= 1
    assert stats['hung']['failed'] + stats['hung']['dropped'] == 5
    assert 'notification channel refused failed (3 attempt(s))' in caplog.text
    assert 'notification channel hung failed' in caplog.text
    texts = [caplog.text, repr(hung), repr(refused), repr(notifier)]
    for text in texts:
        assert TOKEN not in text and 'hdr-s3cr3t' not in text


def test_urls_are_masked_and_their_secrets_known():
    url = 'https://user:pa55word@hooks.example.com:8443/services/T0/B1/' + TOKEN + '?key=zzzz1234'
    assert mask_url(url) == 'https://hooks.example.com:8443/***'
    assert mask_url('https://example.com') == 'https://example.com'
    secrets = url_secrets(url)
    assert secrets[0] == url and TOKEN in secrets and 'pa55word' in secrets
    assert 'zzzz1234' in secrets and 'hooks.example.com' not in secrets
    assert TOKEN not in repr(WebhookChannel(url))


@pytest.mark.parametrize('kwargs,match', [
    (dict(url='ftp://example.com/x'), 'must be an http'),
    (dict(url=None), 'got nothing'),
    (dict(url='https://example.com/x', fmt='xml'), 'unknown webhook format'),
])
def test_bad_webhook_settings_are_clear_errors(kwargs, match, monkeypatch):
    monkeypatch.delenv('BTL_WEBHOOK_URL', raising=False)
    with pytest.raises(ConfigError, match=match):
        WebhookChannel(**kwargs)


def test_the_url_can_come_from_the_environment(monkeypatch):
    monkeypatch.setenv('BTL_WEBHOOK_URL', 'https://example.com/h/' + TOKEN)
    channel = WebhookChannel(None)
    assert channel.name == 'webhook:example.com' and TOKEN in channel.secrets()


def test_https_with_a_private_ca_and_a_rejected_certificate(tmp_path):
    from backtrader_live.errors import FatalError, RetryableError
    from backtrader_live.notifications import Notification
    cert, key, trusting = self_signed(tmp_path)
    with HttpRecorder(tls=(cert, key)) as server:
        WebhookChannel(server.url + '/h', ssl_context=trusting).send(Notification('over tls'))
        assert server.wait(1)[0]['json']['text'] == 'over tls'
        with pytest.raises(FatalError, match='certificate rejected'):
            WebhookChannel(server.url + '/h', timeout=2).send(Notification('untrusted'))
    with HttpRecorder() as plain:
        # an https URL to a plain-HTTP server: a handshake failure, worth retrying
        with pytest.raises(RetryableError, match='webhook unreachable'):
            WebhookChannel('https://127.0.0.1:%d/h' % plain.port, timeout=1,
                           ssl_context=trusting).send(Notification('x'))
