"""Shared by the commands: consoles, and turning our errors into exit codes."""
import contextlib
import logging
import sys

import typer
from rich.console import Console

from ..errors import ConfigError



class _Out:
    """A rich console on the current stdout/stderr (test runners swap them);
    not on a terminal, tables are not wrapped to 80 columns so that lines
    stay whole for grep and logs."""

    def __init__(self, stderr=False):
        self.stderr = stderr

    def print(self, *args, **kwargs):
        stream = sys.stderr if self.stderr else sys.stdout
        width = None if stream.isatty() else 200
        Console(file=stream, highlight=False, soft_wrap=True, width=width).print(
            *args, **kwargs)


out = _Out()
err = _Out(stderr=True)


@contextlib.contextmanager
def user_errors():
    """A ConfigError (bad config, journal, strategy) is a message and exit 2."""
    try:
        yield
    except ConfigError as exc:
        err.print('[bold red]error:[/] %s' % _escape(str(exc)))
        raise typer.Exit(2) from None


def _escape(text):
    from rich.markup import escape
    return escape(text)


def setup_logging(verbose):
    """Plain log lines on stderr: the library's warnings (INFO with -v)."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO if verbose else logging.WARNING,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    logging.getLogger('backtrader_live.cli').setLevel(logging.INFO)
