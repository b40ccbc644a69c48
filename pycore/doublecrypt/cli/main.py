"""The command group; each subcommand module registers itself on it.

Exit codes (see :mod:`doublecrypt.cli.errors`, the one place that maps
exceptions to them):

0 success; 1 generic failure; 2 usage error (click's); 3 not found;
4 already exists / directory not empty; 5 authentication failed (wrong
passphrase or key, tampered data); 6 corrupt or unsupported image (and fsck
finding problems); 7 no space left; 8 I/O error.
"""

from __future__ import annotations

import click

from .. import __version__
from .errors import EXIT_CODES_HELP
from .objectstore import check_store_options, store_options
from .remote import RemoteAwareGroup, check_remote_options, remote_options


@click.group(
    cls=RemoteAwareGroup,
    epilog=EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="doublecrypt")
@remote_options
@store_options
def main(**target: str | None) -> None:
    """Keep files in an encrypted image: doublecrypt COMMAND --help for each.

    With --remote HOST:PORT the file commands work on a volume of a block
    server instead, and with --store s3://BUCKET/PREFIX on a volume in an
    object store; they then take no IMAGE argument."""
    check_remote_options(target)
    check_store_options(target)


def _register() -> None:
    from .admin import fsck, info, init, speed
    from .admin_client import admin
    from .browse import df, ls, stat
    from .demo import demo
    from .files import cat, get, put
    from .import_v1 import import_v1
    from .manage import mkdir, mv, rm
    from .mount import mount
    from .remote import remote
    from .serve import serve, volume
    from .slots import key, passwd

    commands = (init, put, get, ls, cat, mkdir, rm, mv, stat, df, fsck, passwd, key, info, speed)
    for command in (*commands, serve, volume, demo):
        main.add_command(command)
    main.add_command(remote)
    main.add_command(admin)
    main.add_command(import_v1)
    main.add_command(mount)


_register()
