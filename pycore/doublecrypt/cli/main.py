"""The command group; each subcommand module registers itself on it."""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="doublecrypt")
def main() -> None:
    """Keep files in an encrypted image: doublecrypt COMMAND --help for each."""


def _register() -> None:
    from .demo import demo

    main.add_command(demo)


_register()
