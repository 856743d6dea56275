"""binance-futures-connector (UMFutures/CMFutures and their websocket clients),
unmodified, completes a session against the simulator (tests/sim/connector_session.py).

It installs the package ``binance`` like python-binance does, so it cannot share the
test venv: it is installed (without dependencies, which the test extra already has:
requests, websocket-client, pycryptodome) into a temporary folder and the session runs
in a child interpreter with that folder first on its path.
"""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CONNECTOR = 'binance-futures-connector==4.2.0'


@pytest.fixture(scope='module')
def connector_dir(tmp_path_factory):
    target = tmp_path_factory.mktemp('connector')
    done = subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                           '--disable-pip-version-check', '--target', str(target), CONNECTOR],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, 'pip could not install %s:\n%s' % (CONNECTOR, done.stderr)
    return str(target)


def test_binance_futures_connector_session(connector_dir):
    env = dict(os.environ, PYTHONPATH=connector_dir)
    done = subprocess.run([sys.executable, os.path.join(HERE, 'connector_session.py')],
                          capture_output=True, text=True, timeout=110, env=env,
                          cwd=os.path.dirname(os.path.dirname(HERE)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split('\n')[:2] == ['OK usdm', 'OK coinm'], done.stdout
