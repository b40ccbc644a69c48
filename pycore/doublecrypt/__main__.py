"""``python -m doublecrypt``: the ``doublecrypt`` command."""

from doublecrypt.cli import main

main(prog_name="doublecrypt")
