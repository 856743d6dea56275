"""apprise channels: the real apprise library posting to a local HTTP server
(its json:// service; Telegram, Slack... go through the same code path),
URL validation, failures, and a token that stays out of every log."""
import logging
import sys

import pytest

import backtrader_live as btl
from backtrader_live.backoff import Backoff
from backtrader_live.errors import ConfigError
from backtrader_live.notifications import AppriseChannel, Notification, Notifier
from notifykit import HttpRecorder, refused_port

pytest.importorskip('apprise')      # in the test extra; optional for users
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

TOKEN = 'apprTOKEN-9f8e7d6c5b4a'
FAST = dict(backoff=Backoff(base=0.01, cap=0.02))


def test_apprise_delivers_title_body_and_type():
    with HttpRecorder() as server:
        url = 'json://bot:%s@127.0.0.1:%d/notify' % (TOKEN, server.port)
        with Notifier([AppriseChannel(url, title_prefix='[bot]')]) as notifier:
            notifier.notify('BTC/USDT: connection lost (CONNBROKEN); reconnecting', 'WARNING',
                            'data_status')
            notifier.notify('run stopped by RuntimeError: boom', 'CRITICAL', 'run_error')
            notifier.notify('SELL 0.01 BTC/USDT @ 42000 completed', 'INFO', 'order')
            requests = server.wait(3)
    by_type = {r['json']['type']: r['json'] for r in requests}
    assert set(by_type) == {'warning', 'failure', 'info'}
    warning = by_type['warning']
    assert warning['title'] == '[bot] WARNING: BTC/USDT: connection lost (CONNBROKEN); ' \
                               'reconnecting'
    assert warning['message'] == 'BTC/USDT: connection lost (CONNBROKEN); reconnecting'
    assert requests[0]['path'] == '/notify'
    assert requests[0]['headers']['Authorization'].startswith('Basic ')    # bot:TOKEN


def test_timeouts_reach_the_apprise_service():
    channel = AppriseChannel('json://127.0.0.1:9/x', timeout=1.5)
    (service,) = list(channel._apprise)
    assert service.socket_connect_timeout == service.socket_read_timeout == 1.5
    assert channel.name == 'apprise:json'


def test_a_failing_service_is_retried_then_reported_without_its_token(caplog):
    caplog.set_level(logging.DEBUG)
    url = 'json://bot:%s@127.0.0.1:%d/notify' % (TOKEN, refused_port())
    channel = AppriseChannel(url, name='tg', retries=1, **FAST)
    with Notifier([channel]) as notifier:
        notifier.notify('fill')
        assert notifier.flush(10)
        assert notifier.stats()['tg']['failed'] == 1
    assert 'notification channel tg failed (2 attempt(s))' in caplog.text
    assert any(r.name == 'apprise' for r in caplog.records)   # apprise said why...
    assert TOKEN not in caplog.text                            # ...without the token
    assert TOKEN not in repr(channel) and TOKEN not in repr(notifier)


def test_a_server_error_is_a_failure_too():
    with HttpRecorder(statuses=[500, 500]) as server:
        channel = AppriseChannel('json://127.0.0.1:%d/n' % server.port, name='a', retries=1,
                                 **FAST)
        with pytest.raises(Exception, match='could not deliver'):
            channel.send(Notification('x'))
        with Notifier([channel]) as notifier:
            notifier.notify('y')
            assert notifier.flush(10)
            assert notifier.stats()['a'] == {'sent': 1, 'failed': 0, 'dropped': 0, 'queued': 0}
        assert [r['status'] for r in server.requests] == [500, 500, 200]


@pytest.mark.parametrize('url', ['nosuchservice://abc/def', 'not a url', '', None])
def test_urls_apprise_does_not_accept_are_clear_errors(url):
    with pytest.raises(ConfigError, match='apprise'):
        AppriseChannel(url)


@pytest.mark.parametrize('url,shown', [('nosuchservice://%s/x' % TOKEN, 'nosuchservice://***'),
                                       (TOKEN, '?://***'), ('x y://' + TOKEN, '?://***')])
def test_a_refused_url_does_not_echo_its_secret(url, shown):
    with pytest.raises(ConfigError) as err:
        AppriseChannel(url)
    assert TOKEN not in str(err.value) and shown in str(err.value)


def test_setup_adds_one_channel_per_url(monkeypatch):
    cerebro = btl.Cerebro()
    urls = 'json://127.0.0.1:9/a  jsons://127.0.0.1:9/b'
    channels = btl.setup_external_notifications(cerebro, 'apprise', apprise_urls=urls,
                                                apprise_level='ERROR', timeout=2)
    assert [c.name for c in channels] == ['apprise:json', 'apprise:jsons']
    assert all(c.level == logging.ERROR and c.timeout == 2 for c in channels)
    monkeypatch.setenv('BTL_APPRISE_URLS', 'json://127.0.0.1:9/env')
    (from_env,) = btl.setup_external_notifications(btl.Cerebro(), ['apprise'])
    assert from_env.name == 'apprise:json'
    monkeypatch.delenv('BTL_APPRISE_URLS')
    with pytest.raises(ConfigError, match='apprise needs apprise_urls'):
        btl.setup_external_notifications(btl.Cerebro(), ['apprise'])


def test_without_apprise_installed_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'apprise', None)
    with pytest.raises(ConfigError, match=r'pip install "backtrader-live\[notify\]"'):
        AppriseChannel('json://127.0.0.1:9/x')
