"""Config files (TOML) for live runs: schema, loading, migration, reference.

``load_config(path)`` returns a :class:`Loaded` (``.config`` validated, at
the current version; ``.changes`` what migration did); ``run_live_arguments``
and ``setup_cerebro`` turn it into a run. See docs/config.md.
"""
from .loading import Loaded, interpolate, load_config, load_data, read_secrets, read_toml
from .migrations import migrate
from .resolve import check_options, load_class, run_live_arguments, setup_cerebro
from .schema import VERSION, Config
from .template import TEMPLATE, dump

__all__ = ['Config', 'Loaded', 'TEMPLATE', 'VERSION', 'check_options', 'dump', 'interpolate',
           'load_class', 'load_config', 'load_data', 'migrate', 'read_secrets', 'read_toml',
           'run_live_arguments', 'setup_cerebro']
