"""The config file's schema (version 1), derived from ``Cerebro.run_live``.

``run_live``'s keyword arguments and the config file are one schema:

- ``[live]`` holds run_live's own named arguments. Its fields are built from
  ``inspect.signature(Cerebro.run_live)`` (names and defaults) and its
  docstring (descriptions), so an argument added to run_live appears here
  without a second list to keep in step (tests/test_config.py checks it).
- ``[options.<component>]`` are run_live's explicit dictionaries
  (``options.DICT_OF``: store_kwargs, broker_kwargs, data_kwargs, run_kwargs);
  their keys are checked against the component classes by the very code
  run_live uses (``Cerebro._route_options``), once the exchange is known.
- ``[strategy]`` is the strategy class and its ``params`` (strategy_params).
- The rest (sizer, analyzers, risk, notifications, journal, secrets) is what
  a run from a file needs beyond run_live's arguments.
"""
import inspect
import re
import typing
from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..cerebro import Cerebro
from ..options import DICT_OF

#: the current version of the file format (migrations.py upgrades older ones)
VERSION = 1

#: run_live arguments that are not [live] keys, and where they live instead
NOT_IN_LIVE = {'self': None, 'strategy_cls': 'strategy.class',
               'apikey': 'secrets.apikey', 'secret': 'secrets.secret',
               'options': 'options.<component>', 'strategy_params': 'strategy.params'}
NOT_IN_LIVE.update({v: 'options.' + k for k, v in DICT_OF.items() if k != 'strategy'})

#: types of run_live arguments whose default (None) does not tell the type
NONE_DEFAULT_TYPES = {'endpoint': Optional[str], 'max_bars': Optional[int],
                      'duration': Optional[float], 'keep_bars': Optional[int],
                      'replay': Optional[str],
                      # required, so no default to tell: one name or a list of
                      # them (several feeds in one run: one per symbol x timeframe)
                      'exchange': str, 'symbol': Union[str, List[str]],
                      'timeframe': Union[str, List[str]]}

#: run_live's docstring tells these in one bullet with exchange's: their own words here
LIST_DESCRIPTIONS = {
    'symbol': "the market in ccxt form ('BTC/USDT'), or a list of them: one feed per "
              "symbol (and timeframe), data0 the first",
    'timeframe': "'1m' ... '1M', or a list of them ('1h', '4h'): one feed per timeframe "
                 "(and symbol)"}

#: keys that hold credentials: never accepted in the config file itself
SECRET_KEYS = frozenset({'apikey', 'api_key', 'secret', 'api_secret', 'password',
                         'passphrase', 'email_password', 'private_key'})


class Strict(BaseModel):
    """Unknown keys refused, TOML types taken as written (no '5' -> 5)."""
    model_config = ConfigDict(extra='forbid', strict=True)


def _descriptions():
    """``{name: text}`` from the ``- name: text`` bullets of run_live's docstring."""
    text = inspect.getdoc(Cerebro.run_live) or ''
    found = {}
    for bullet in re.split(r'\n- ', text)[1:]:
        head, _, body = bullet.partition(':')
        body = ' '.join(body.split())
        for name in re.findall(r'\w+', head):
            found.setdefault(name, body)
    return found


def _live_type(param):
    if param.name in NONE_DEFAULT_TYPES:
        return NONE_DEFAULT_TYPES[param.name]
    if param.annotation is not inspect.Parameter.empty:
        return param.annotation
    if param.default is inspect.Parameter.empty or param.default is None:
        return Any
    kind = type(param.default)
    return float if kind is float else kind


def live_parameters():
    """run_live's parameters that are [live] keys, in signature order."""
    params = inspect.signature(Cerebro.run_live).parameters.values()
    return [p for p in params if p.name not in NOT_IN_LIVE
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def _build_live_model():
    docs = _descriptions()
    fields = {}
    for p in live_parameters():
        required = p.default is inspect.Parameter.empty
        fields[p.name] = (_live_type(p), Field(... if required else p.default,
                                               description=docs.get(p.name) or
                                               LIST_DESCRIPTIONS.get(p.name, '')))
    return create_model('Live', __base__=Strict, **fields)


Live = _build_live_model()
Live.__doc__ = "run_live's own arguments (exchange, symbol, timeframe, ...)"


class Options(Strict):
    """run_live's explicit dictionaries: each key checked against its component."""
    store: Dict[str, Any] = Field({}, description='store_kwargs: options of the exchange '
                                  'store (recv_window, rate_limit, ...)')
    broker: Dict[str, Any] = Field({}, description='broker_kwargs: options of the broker '
                                   '(leverage, risk limits of its gate, ...)')
    data: Dict[str, Any] = Field({}, description='data_kwargs: options of the data feed')
    run: Dict[str, Any] = Field({}, description='run_kwargs: options of Cerebro.run '
                                '(exactbars, tz, ...)')


class StrategySection(Strict):
    model_config = ConfigDict(extra='forbid', strict=True, populate_by_name=True)
    class_: str = Field(alias='class', description="the strategy: 'package.module:Class' "
                        "or 'path/to/file.py:Class' (relative to the config file)")
    params: Dict[str, Any] = Field({}, description='its params (strategy_params)')


class Component(Strict):
    model_config = ConfigDict(extra='forbid', strict=True, populate_by_name=True)
    class_: str = Field(alias='class', description="'package.module:Class', "
                        "'path/file.py:Class' or a backtrader name ('PercentSizer')")
    params: Dict[str, Any] = Field({}, description='its params')


class Risk(Strict):
    """RiskAnalyzer's limits (added to the run when enabled)."""
    enabled: bool = Field(False, description='add RiskAnalyzer with these limits')
    max_drawdown_limit: float = Field(0.15, description='drawdown from peak equity, 0..1')
    max_position_risk: float = Field(0.3, description='exposure / equity, 0..1')
    daily_loss_limit: float = Field(0.05, description='loss since the UTC day began, 0..1')
    enforce: bool = Field(True, description="trip the broker's kill switch on a breach")
    cancel_open: bool = Field(True, description='on a trip, cancel orders adding exposure')
    flatten: bool = Field(False, description='on a trip, close every position')


class Notifications(Strict):
    methods: List[str] = Field([], description="'log', 'webhook', 'apprise', 'email' "
                               '(empty: from the settings and the environment, plus log)')
    settings: Dict[str, Any] = Field({}, description='setup_external_notifications() '
                                     'settings (level, webhook_url, apprise_urls, ...); '
                                     'passwords only from the environment')


class Journal(Strict):
    enabled: bool = Field(True, description='record the run in a database')
    url: str = Field('sqlite:///backtrader_live_journal.db',
                     description='SQLAlchemy URL: sqlite:///file.db (relative to the config '
                     'file) or postgresql+psycopg://user@host/db')
    queue_size: int = Field(10000, description='records buffered before a writer waits')


class Secrets(Strict):
    file: Optional[str] = Field(None, description='a TOML file with apikey and secret; '
                                'must not be readable by group or others (chmod 600). '
                                'Without it: <EXCHANGE>_API_KEY / <EXCHANGE>_API_SECRET')
    apikey: Optional[str] = Field(None, description='only as "${VARIABLE}": the API key '
                                  'from an environment variable of another name')
    secret: Optional[str] = Field(None, description='only as "${VARIABLE}": the API secret '
                                  'from an environment variable of another name')


class Config(Strict):
    """The whole file."""
    version: Literal[1] = Field(VERSION, description='file format version')
    live: Live = Field(description=Live.__doc__)
    strategy: StrategySection
    options: Options = Field(Options())
    sizer: Optional[Component] = Field(None, description='cerebro.addsizer')
    analyzers: List[Component] = Field([], description='cerebro.addanalyzer, in order')
    risk: Risk = Field(Risk())
    notifications: Notifications = Field(Notifications())
    journal: Journal = Field(Journal())
    secrets: Secrets = Field(Secrets())


def submodel(model, loc):
    """The model class at ``loc`` (a pydantic error location), or None."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return None
        model = _model_of(field.annotation)
        if model is None:
            return None
    return model


def _model_of(annotation):
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def keys_of(model):
    return [f.alias or name for name, f in model.model_fields.items()]
