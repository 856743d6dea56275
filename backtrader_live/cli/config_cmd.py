"""``config init|migrate|show``."""
import os
import shutil

import typer

from ..config import TEMPLATE, dump, load_config, read_toml
from .common import out, user_errors

app = typer.Typer(help='Create, upgrade and inspect config files (docs/config.md).',
                  no_args_is_help=True)


@app.command()
def init(path: str = typer.Argument('backtrader_live.toml', help='file to create'),
         force: bool = typer.Option(False, help='overwrite an existing file')):
    """Write a commented starting config."""
    with user_errors():
        if os.path.exists(path) and not force:
            from ..errors import ConfigError
            raise ConfigError('%s exists; use --force to overwrite it' % path)
        with open(path, 'w') as f:
            f.write(TEMPLATE)
    out.print('wrote %s (edit it, then: backtrader-live check %s)' % (path, path))


@app.command()
def show(path: str = typer.Argument(..., help='the config file')):
    """Print the config as understood: defaults filled in, old versions migrated."""
    with user_errors():
        loaded = load_config(path)
    for change in loaded.changes:
        out.print('# migrated: %s' % change)
    out.print(dump(loaded.config), markup=False)


@app.command()
def migrate(path: str = typer.Argument(..., help='the config file'),
            output: str = typer.Option(None, '--output', '-o',
                                       help='write here instead of rewriting PATH '
                                       '(PATH is then kept as PATH.bak)')):
    """Rewrite an older config in the current version and say what changed."""
    with user_errors():
        read_toml(path)
        loaded = load_config(path)
        if not loaded.changes:
            out.print('%s is already version %d: nothing to do' % (path,
                                                                  loaded.config.version))
            return
        target = output or path
        if target == path:
            shutil.copy2(path, path + '.bak')
        with open(target, 'w') as f:
            f.write(dump(loaded.config))
    for change in loaded.changes:
        out.print('  ' + change, markup=False)
    out.print('wrote %s%s' % (target, ' (the old file is %s.bak)' % path
                              if target == path else ''))
