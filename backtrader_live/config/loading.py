"""Read a config file: TOML, ``${ENV}``, secrets, migration, validation.

Every problem is a :class:`ConfigError` that names the key (``live.cash``),
what is wrong and what is accepted; nothing in the file is ignored.
"""
import os
import re
import stat
import sys

from pydantic import ValidationError

from ..errors import ConfigError
from ..options import closest
from .migrations import migrate
from .schema import SECRET_KEYS, Config, keys_of, submodel

if sys.version_info >= (3, 11):
    import tomllib
else:       # pragma: no cover - Python 3.10
    import tomli as tomllib

_ENV = re.compile(r'\$(\$?)\{([^}]*)\}')
_ONLY_ENV = re.compile(r'^\$\{[A-Za-z_][A-Za-z0-9_]*\}$')


class Loaded:
    """A validated config plus where it came from and what migration changed."""

    def __init__(self, config, path, changes, raw):
        self.config, self.path, self.changes, self.raw = config, path, changes, raw
        self.base_dir = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()


def read_toml(path):
    try:
        with open(path, 'rb') as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError('config file %s does not exist (create one with: '
                          'backtrader-live config init %s)' % (path, path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError('config file %s is not valid TOML: %s' % (path, exc)) from None
    except OSError as exc:
        raise ConfigError('cannot read config file %s: %s' % (path, exc)) from None


def refuse_secrets(data, where=''):
    """A credential written into the config file is refused: config files get
    copied, committed and pasted; ``${VAR}`` (from the environment) is fine."""
    items = data.items() if isinstance(data, dict) else enumerate(data) \
        if isinstance(data, list) else ()
    for key, value in items:
        path = '%s.%s' % (where, key) if where else str(key)
        if isinstance(key, str) and key.lower() in SECRET_KEYS and not (
                isinstance(value, str) and _ONLY_ENV.match(value)):
            raise ConfigError(
                '%s: secrets are not accepted in the config file; remove it and set the '
                'environment (e.g. BINANCE_API_KEY / BINANCE_API_SECRET), or write '
                '%s = "${SOME_VARIABLE}" where the key is accepted ([secrets] apikey/secret, '
                'notification passwords), or name a [secrets] file holding apikey and '
                'secret (chmod 600)' % (path, key))
        refuse_secrets(value, path)


def interpolate(data, env=None, where=''):
    """``${NAME}`` in strings replaced by the environment variable; ``$${``
    is a literal ``${``. A variable that is not set is an error."""
    env = os.environ if env is None else env
    if isinstance(data, dict):
        return {k: interpolate(v, env, '%s.%s' % (where, k) if where else k)
                for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate(v, env, '%s[%d]' % (where, i)) for i, v in enumerate(data)]
    if not isinstance(data, str):
        return data

    def replace(match):
        if match.group(1):
            return '${%s}' % match.group(2)
        name = match.group(2)
        if name not in env:
            raise ConfigError('%s: environment variable %s is not set (used as ${%s})'
                              % (where, name, name))
        return env[name]
    return _ENV.sub(replace, data)


def describe_errors(error):
    """One line per pydantic error: key, problem, accepted values."""
    lines = []
    for err in error.errors():
        loc = err['loc']
        key = '.'.join(str(p) for p in loc) or '(top level)'
        if err['type'] == 'extra_forbidden':
            model = submodel(Config, loc[:-1])
            valid = keys_of(model) if model else []
            lines.append('%s: unknown key%s; valid keys here: %s'
                         % (key, closest(loc[-1], valid), ', '.join(valid)))
        elif err['type'] == 'missing':
            lines.append('%s: required key is missing' % key)
        else:
            lines.append('%s: %s, got %r' % (key, err['msg'], err.get('input')))
    return lines


def validate(data):
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError('invalid config:\n  ' + '\n  '.join(describe_errors(exc))) from None


def load_data(data, path=None, env=None):
    """Validate already-parsed TOML data (``path`` only for messages/paths)."""
    if not isinstance(data, dict):
        raise ConfigError('a config is a table of keys, got %r' % type(data).__name__)
    refuse_secrets(data)
    base_dir = os.path.dirname(os.path.abspath(path)) if path else None
    migrated, changes = migrate(interpolate(data, env), {'base_dir': base_dir})
    return Loaded(validate(migrated), path, changes, data)


def load_config(path, env=None):
    """Read, interpolate, migrate and validate the config file at ``path``."""
    return load_data(read_toml(path), path, env)


def read_secrets(loaded, env=None):
    """``(apikey, secret)`` from the [secrets] file, else (None, None): the
    store then reads ``<EXCHANGE>_API_KEY``/``_API_SECRET`` itself."""
    secrets = loaded.config.secrets
    name = secrets.file
    if name and (secrets.apikey or secrets.secret):
        raise ConfigError('[secrets]: give either file or apikey/secret, not both')
    if secrets.apikey or secrets.secret:
        if not (secrets.apikey and secrets.secret):
            raise ConfigError('[secrets]: apikey and secret go together')
        return secrets.apikey, secrets.secret
    if not name:
        return None, None
    full = os.path.join(loaded.base_dir, os.path.expanduser(name))
    try:
        mode = os.stat(full).st_mode
    except OSError as exc:
        raise ConfigError('secrets file %s: %s' % (full, exc.strerror)) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError('secrets file %s is readable by group or others (mode %o): '
                          'run chmod 600 %s' % (full, stat.S_IMODE(mode), full))
    data = read_toml(full)
    unknown = sorted(set(data) - {'apikey', 'secret'})
    if unknown or not data.get('apikey') or not data.get('secret'):
        raise ConfigError('secrets file %s must hold exactly apikey = "..." and '
                          'secret = "..."%s' % (full, ' (unknown: %s)' % ', '.join(unknown)
                                                if unknown else ''))
    return data['apikey'], data['secret']
