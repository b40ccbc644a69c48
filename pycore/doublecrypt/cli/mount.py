"""``doublecrypt mount``: an image (or with ``--remote`` a volume of a block
server) as a directory, through FUSE, until it is unmounted.

In the background (the default) the command forks before opening anything:
the child asks for the passphrase if needed, opens the volume and mounts it,
and only once the kernel has connected does it detach (new session, standard
streams on /dev/null) and tell the waiting parent, which then exits 0. Any
error before that comes back through a pipe and the parent reports it with
the usual exit code, so ``doublecrypt mount ... && ls MOUNTPOINT`` works.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import NoReturn

import click

import doublecrypt

from .common import image_argument
from .errors import EXIT_FAILURE, EXIT_OK, CliError, handle_errors
from .keys import KeySource, key_options, open_volume

__all__ = ["mount"]

READY = b"ready\n"
ERROR = b"error "


def _say(message: str) -> None:
    click.echo(f"doublecrypt: {message}", err=True)


def _serve(
    image: str, mountpoint: str, read_only: bool, keys: KeySource, on_ready: Callable[[], None]
) -> None:
    try:
        from ..mount import serve_mount  # needs mfusepy and libfuse 3: loaded only here
    except doublecrypt.errors.UnsupportedError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    fs = open_volume(image, keys, read_only=read_only)
    serve_mount(fs, mountpoint, read_only=read_only, on_ready=on_ready)


def _detach() -> None:
    """Become a daemon: no controlling terminal, no inherited streams or
    working directory (which would keep a file system busy)."""
    os.setsid()
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _run_daemon(
    image: str, mountpoint: str, read_only: bool, keys: KeySource, report_fd: int
) -> NoReturn:
    """The forked child: mount and serve; report readiness or the error."""
    ready = threading.Event()

    def on_ready() -> None:
        _detach()
        os.write(report_fd, READY)
        os.close(report_fd)
        ready.set()

    code = EXIT_OK
    try:
        with handle_errors():
            _serve(image, mountpoint, read_only, keys, on_ready)
    except click.ClickException as exc:
        code = exc.exit_code
        if not ready.is_set():
            message = " ".join(exc.format_message().split())
            os.write(report_fd, ERROR + f"{code} {message}\n".encode())
    except BaseException:
        code = EXIT_FAILURE
    finally:
        os._exit(code)  # never return into the parent's code path


def _mount_in_background(image: str, mountpoint: str, read_only: bool, keys: KeySource) -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _run_daemon(image, mountpoint, read_only, keys, write_fd)
    os.close(write_fd)
    # No timeout: the child may be waiting for a passphrase typed at the prompt.
    with os.fdopen(read_fd, "rb") as pipe:
        line = pipe.readline()
    if line == READY:
        _say(
            f"mounted {image} on {mountpoint} (process {pid}); unmount: fusermount3 -u {mountpoint}"
        )
        return
    _, status = os.waitpid(pid, 0)
    if line.startswith(ERROR):
        code, _, message = line[len(ERROR) :].decode("utf-8", "replace").strip().partition(" ")
        raise CliError(message, int(code))
    raise CliError(
        f"the mount process ended before the mount was ready (wait status {status})", EXIT_FAILURE
    )


@click.command()
@image_argument
@click.argument("mountpoint", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option(
    "-f", "--foreground", is_flag=True, help="Stay in the foreground (Ctrl-C or SIGTERM unmounts)."
)
@click.option("--read-only", is_flag=True, help="Mount read-only: every change fails with EROFS.")
@key_options
def mount(image: str, mountpoint: str, foreground: bool, read_only: bool, keys: KeySource) -> None:
    """Mount IMAGE on the directory MOUNTPOINT (FUSE) until unmounted.

    Unmount with 'fusermount3 -u MOUNTPOINT' (or umount as root): that syncs
    and closes the image. In the background (the default) the command
    returns once the mount is ready. Files and directories only: symbolic
    and hard links are refused (ENOTSUP), owners are not kept.
    """
    mountpoint = os.path.abspath(mountpoint)
    if os.path.ismount(mountpoint):
        raise CliError(f"{mountpoint} is already a mount point", EXIT_FAILURE)
    if foreground:
        _serve(
            image,
            mountpoint,
            read_only,
            keys,
            lambda: _say(f"mounted {image} on {mountpoint}; Ctrl-C or fusermount3 -u to unmount"),
        )
        return
    _mount_in_background(image, mountpoint, read_only, keys)
