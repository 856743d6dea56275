"""Config files: schema = run_live's arguments, refusals, secrets, ${ENV},
migration from version 0, and docs/config.md kept in step."""
import inspect
import os
import textwrap

import pytest

from backtrader_live import Cerebro, ConfigError
from backtrader_live.config import (TEMPLATE, check_options, dump, load_config, load_data,
                                    read_secrets, run_live_arguments)
from backtrader_live.config import reference
from backtrader_live.config.schema import NOT_IN_LIVE, Live

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, 'samples', 'sma_cross.py') + ':SmaCross'

V1 = '''
version = 1
[live]
exchange = "binance"
symbol = "BTC/USDT"
timeframe = "1h"
[strategy]
class = "%s"
params = { fast = 5 }
''' % SAMPLE


def write(tmp_path, text, name='bot.toml'):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_every_run_live_argument_is_a_config_key():
    """One schema: a run_live argument nobody mapped fails here."""
    names = set(inspect.signature(Cerebro.run_live).parameters)
    assert names - set(NOT_IN_LIVE) == set(Live.model_fields)
    default = Live.model_fields['cash'].default
    assert default == inspect.signature(Cerebro.run_live).parameters['cash'].default
    assert 'starting cash' in Live.model_fields['cash'].description


def test_template_loads_and_round_trips(tmp_path):
    loaded = load_config(write(tmp_path, TEMPLATE))
    assert loaded.config.live.exchange == 'binance' and loaded.changes == []
    again = load_config(write(tmp_path, dump(loaded.config), 'again.toml'))
    assert again.config == loaded.config


def test_run_live_arguments_from_config(tmp_path):
    loaded = load_config(write(tmp_path, V1))
    args, kwargs = run_live_arguments(loaded.config, loaded.base_dir, ('k', 's'))
    assert args[:3] == ('binance', 'BTC/USDT', '1h') and args[3].__name__ == 'SmaCross'
    assert kwargs['strategy_params'] == {'fast': 5} and kwargs['apikey'] == 'k'
    assert kwargs['cash'] == 10000.0 and kwargs['paper_trading'] is True
    assert check_options(loaded.config, loaded.base_dir)['strategy'] == {'fast': 5}


def test_several_symbols_and_timeframes_as_lists(tmp_path):
    """[live] symbol and timeframe take a list (run_live's several feeds) and
    reach run_live as lists; another type is refused with the accepted ones."""
    text = V1.replace('symbol = "BTC/USDT"', 'symbol = ["BTC/USDT", "ETH/USDT"]').replace(
        'timeframe = "1h"', 'timeframe = ["1h", "4h"]')
    loaded = load_config(write(tmp_path, text))
    args, _ = run_live_arguments(loaded.config, loaded.base_dir)
    assert args[1:3] == (['BTC/USDT', 'ETH/USDT'], ['1h', '4h'])
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, V1.replace('symbol = "BTC/USDT"', 'symbol = 5')))
    assert 'live.symbol' in str(err.value) and 'valid string' in str(err.value)
    with pytest.raises(ConfigError, match='live.timeframe'):
        load_config(write(tmp_path, V1.replace('timeframe = "1h"', 'timeframe = ["1h", 4]')))


@pytest.mark.parametrize('extra, message', [
    ('[live]\ncsh = 5\n', "live.csh: unknown key (did you mean 'cash'?)"),
    ('[jurnal]\n', "jurnal: unknown key (did you mean 'journal'?)"),
    ('[risk]\nmax_drawdown = 0.1\n', "did you mean 'max_drawdown_limit'?"),
])
def test_unknown_keys_name_the_closest(tmp_path, extra, message):
    text = V1.replace('[strategy]', extra + '[strategy]') if extra.startswith('[live]') \
        else V1 + extra
    if extra.startswith('[live]'):
        text = V1.replace('timeframe = "1h"', 'timeframe = "1h"\ncsh = 5')
    with pytest.raises(ConfigError, match='valid keys') as err:
        load_config(write(tmp_path, text))
    assert message in str(err.value)


def test_wrong_types_say_what_is_accepted(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, V1.replace('timeframe = "1h"',
                                               'timeframe = "1h"\ncash = "lots"')))
    assert 'live.cash' in str(err.value) and 'valid number' in str(err.value)
    with pytest.raises(ConfigError, match="version must be an integer"):
        load_config(write(tmp_path, V1.replace('version = 1', 'version = "one"')))
    with pytest.raises(ConfigError, match='newer than this backtrader_live'):
        load_config(write(tmp_path, V1.replace('version = 1', 'version = 7')))


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match='does not exist.*config init'):
        load_config(str(tmp_path / 'missing.toml'))
    with pytest.raises(ConfigError, match='not valid TOML'):
        load_config(write(tmp_path, 'version = = 1'))
    with pytest.raises(ConfigError, match="required key is missing"):
        load_config(write(tmp_path, 'version = 1\n[live]\nexchange = "binance"\n'))


def test_option_keys_checked_by_run_live_routing(tmp_path):
    loaded = load_config(write(tmp_path, V1 + '[options.store]\nrecv_windo = 5\n'))
    with pytest.raises(ConfigError, match="recv_window"):
        check_options(loaded.config, loaded.base_dir)
    loaded = load_config(write(tmp_path, V1.replace('fast = 5', 'fsat = 5')))
    with pytest.raises(ConfigError, match="did you mean 'fast'"):
        check_options(loaded.config, loaded.base_dir)


def test_strategy_that_does_not_import(tmp_path):
    bad = tmp_path / 'broken.py'
    bad.write_text('import no_such_module_here\n')
    loaded = load_config(write(tmp_path, V1.replace(SAMPLE, 'broken.py:X')))
    with pytest.raises(ConfigError, match='importing .*broken.py failed.*no_such_module'):
        run_live_arguments(loaded.config, loaded.base_dir)
    loaded = load_config(write(tmp_path, V1.replace(SAMPLE, 'no.such.pkg:X')))
    with pytest.raises(ConfigError, match="cannot import 'no.such.pkg'"):
        run_live_arguments(loaded.config, loaded.base_dir)
    loaded = load_config(write(tmp_path, V1.replace(SAMPLE, 'SmaCross')))
    with pytest.raises(ConfigError, match="not a class reference"):
        run_live_arguments(loaded.config, loaded.base_dir)


def test_secrets_refused_in_the_file(tmp_path):
    text = V1 + '[options.store]\napikey = "abc"\n'
    with pytest.raises(ConfigError, match='options.store.apikey: secrets are not accepted'):
        load_config(write(tmp_path, text))
    text = V1 + '[notifications.settings]\nemail_password = "hunter2"\n'
    with pytest.raises(ConfigError, match='secrets are not accepted') as err:
        load_config(write(tmp_path, text))
    assert 'hunter2' not in str(err.value)


def test_env_interpolation(tmp_path):
    text = V1.replace('"BTC/USDT"', '"${BTL_T_BASE}/USDT"') + \
        '[notifications.settings]\nemail_password = "${BTL_T_PW}"\nlevel = "$${X}"\n'
    env = {'BTL_T_BASE': 'ETH', 'BTL_T_PW': 'pw'}
    import tomllib
    loaded = load_data(tomllib.loads(text), str(tmp_path / 'x.toml'), env)
    assert loaded.config.live.symbol == 'ETH/USDT'
    assert loaded.config.notifications.settings == {'email_password': 'pw', 'level': '${X}'}
    with pytest.raises(ConfigError, match='live.symbol: environment variable BTL_T_BASE'):
        load_data(tomllib.loads(text), None, {})


def test_secrets_file_must_be_private(tmp_path):
    secrets = tmp_path / 'keys.toml'
    secrets.write_text('apikey = "k1"\nsecret = "s1"\n')
    secrets.chmod(0o644)
    loaded = load_config(write(tmp_path, V1 + '[secrets]\nfile = "keys.toml"\n'))
    with pytest.raises(ConfigError, match=r'readable by group or others \(mode 644\): '
                       r'run chmod 600 .*keys.toml'):
        read_secrets(loaded)
    secrets.chmod(0o600)
    assert read_secrets(loaded) == ('k1', 's1')
    secrets.write_text('apikey = "k1"\n')
    with pytest.raises(ConfigError, match='must hold exactly apikey'):
        read_secrets(loaded)
    assert read_secrets(load_config(write(tmp_path, V1))) == (None, None)


def test_version_0_is_migrated(tmp_path):
    """Today's flat run_live keyword arguments, routed as run_live routes them."""
    v0 = '''
    exchange = "binance"
    symbol = "BTC/USDT"
    timeframe = "1h"
    strategy = "%s"
    cash = 500.0
    fast = 7
    recv_window = 6000
    broker_kwargs = { leverage = 2 }
    ''' % SAMPLE
    loaded = load_config(write(tmp_path, v0))
    cfg = loaded.config
    assert cfg.version == 1 and cfg.live.cash == 500.0
    assert cfg.strategy.params == {'fast': 7}
    assert cfg.options.store == {'recv_window': 6000}
    assert cfg.options.broker == {'leverage': 2}
    assert 'v0->v1: fast -> [strategy.params] fast' in loaded.changes
    assert 'v0->v1: recv_window -> [options.store] recv_window' in loaded.changes
    with pytest.raises(ConfigError, match="unknown option 'fsat'.*did you mean 'fast'"):
        load_config(write(tmp_path, v0.replace('fast = 7', 'fsat = 7')))
    with pytest.raises(ConfigError, match="'strategy'.*is missing"):
        load_config(write(tmp_path, 'exchange = "binance"\n'))


def test_reference_is_current():
    """docs/config.md is generated; stale is a failure (regenerate with
    python -m backtrader_live.config.reference)."""
    path = os.path.join(ROOT, 'docs', 'config.md')
    with open(path) as f:
        assert f.read() == reference.render(), 'run python -m backtrader_live.config.reference'
    assert reference.main(['--check', path]) == 0
    for key, _, _, _ in reference.rows():
        assert key


def test_keys_from_environment_variables_of_other_names(tmp_path):
    text = V1 + '[secrets]\napikey = "${BTL_T_KEY}"\nsecret = "${BTL_T_SECRET}"\n'
    import tomllib
    env = {'BTL_T_KEY': 'k2', 'BTL_T_SECRET': 's2'}
    loaded = load_data(tomllib.loads(text), str(tmp_path / 'x.toml'), env)
    assert read_secrets(loaded) == ('k2', 's2')
    with pytest.raises(ConfigError, match='secrets.apikey: secrets are not accepted'):
        load_data(tomllib.loads(text.replace('${BTL_T_KEY}', 'plain')), None, env)
    half = load_data(tomllib.loads(V1 + '[secrets]\napikey = "${BTL_T_KEY}"\n'), None, env)
    with pytest.raises(ConfigError, match='apikey and secret go together'):
        read_secrets(half)
    both = load_data(tomllib.loads(text + 'file = "k.toml"\n'), None, env)
    with pytest.raises(ConfigError, match='either file or apikey/secret'):
        read_secrets(both)
    v0 = ('exchange = "binance"\nsymbol = "BTC/USDT"\ntimeframe = "1h"\n'
          'strategy = "%s"\napikey = "${BTL_T_KEY}"\nsecret = "${BTL_T_SECRET}"\n' % SAMPLE)
    migrated = load_data(tomllib.loads(v0), None, env)
    assert read_secrets(migrated) == ('k2', 's2')
    assert 'v0->v1: apikey -> [secrets] apikey' in migrated.changes
