"""``sim`` and ``demo``: the existing programs, reached from the one command."""
import importlib.util
import os
import sys

import typer

from ..errors import ConfigError
from .common import user_errors

PASS_THROUGH = {'allow_extra_args': True, 'ignore_unknown_options': True,
                'help_option_names': []}
DEMO = os.path.join(os.path.dirname(__file__), '..', '..', 'samples', 'demo.py')


def sim(ctx: typer.Context):
    """Serve a local exchange simulator (python -m backtrader_live.sim; --help there)."""
    from ..sim.__main__ import main
    sys.exit(main(list(ctx.args)))


def demo(ctx: typer.Context):
    """Trade the sample strategy against the bundled simulator (samples/demo.py)."""
    with user_errors():
        path = os.path.normpath(DEMO)
        if not os.path.isfile(path):
            raise ConfigError('the demo is samples/demo.py of a source checkout; %s is '
                              'missing in this installation' % path)
        spec = importlib.util.spec_from_file_location('btl_demo', path)
        module = importlib.util.module_from_spec(spec)
        # backtrader's metaclasses look a class's module up in sys.modules,
        # and the demo imports its neighbours (samples/) as python samples/demo.py would
        sys.modules[spec.name] = module
        sys.path.insert(0, os.path.dirname(path))
        spec.loader.exec_module(module)
    sys.exit(module.main(list(ctx.args)))


def register(app):
    app.command('sim', context_settings=PASS_THROUGH, add_help_option=False)(sim)
    app.command('demo', context_settings=PASS_THROUGH, add_help_option=False)(demo)
