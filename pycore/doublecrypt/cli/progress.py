"""Progress bars (rich) on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

__all__ = ["block_progress", "byte_progress", "stderr_console"]


def stderr_console() -> Console:
    """A rich console on the current stderr (so tests that swap it see it)."""
    return Console(stderr=True)


@contextmanager
def byte_progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(nbytes)`` for a bar of ``total`` bytes (None: unknown)."""
    console = stderr_console()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(description, total=total)

        def advance(nbytes: int) -> None:
            progress.update(task, advance=nbytes)

        yield advance


@contextmanager
def _sigint_sets(flag: threading.Event) -> Iterator[None]:
    """While active, Ctrl-C sets ``flag`` instead of raising KeyboardInterrupt
    (which a C callback could not pass on)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda _signum, _frame: flag.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def block_progress(description: str) -> Iterator[Callable[[int, int], bool]]:
    """Yield ``update(done, total)``, the shape of FileStore.create's progress:
    it returns False, which cancels, once Ctrl-C has been pressed."""
    console = stderr_console()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("blocks"),
        TimeRemainingColumn(),
    )
    interrupted = threading.Event()
    with (
        Progress(*columns, console=console, disable=not console.is_terminal) as progress,
        _sigint_sets(interrupted),
    ):
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> bool:
            progress.update(task, completed=done, total=total)
            return not interrupted.is_set()

        yield update
