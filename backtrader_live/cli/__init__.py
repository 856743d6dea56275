"""``backtrader-live`` / ``python -m backtrader_live``: the command line.

``config init|migrate|show``, ``run``, ``backtest``, ``check``, ``report``,
``sim``, ``demo``.
Errors a user can fix (a bad config, a journal that cannot be opened) are
one clear message and exit code 2, never a traceback.
"""
import sys

import typer

from ..errors import ConfigError
from . import check as check_cmd
from . import backtest as backtest_cmd, config_cmd, report as report_cmd, run as run_cmd
from . import wrappers

app = typer.Typer(name='backtrader-live', no_args_is_help=True, add_completion=False,
                  help='Live crypto trading for unchanged backtrader strategies.')
app.add_typer(config_cmd.app, name='config')
app.command('run')(run_cmd.run)
app.command('backtest')(backtest_cmd.backtest)
app.command('check')(check_cmd.check)
app.command('report')(report_cmd.report)
wrappers.register(app)


def main(argv=None):
    """Entry point of the console script; ConfigError -> message, exit 2."""
    try:
        app(args=argv, standalone_mode=True)
    except ConfigError as exc:       # pragma: no cover - typer's standalone mode exits
        sys.stderr.write('error: %s\n' % exc)
        sys.exit(2)
