"""``doublecrypt mount``: an image (or with ``--remote`` a volume of a block
server) as a directory, through FUSE, until it is unmounted.

In the background (the default) the command forks before opening anything:
the child asks for the passphrase if needed, opens the volume and mounts it,
and only once the kernel has connected does it detach (new session, standard
streams on /dev/null) and tell the waiting parent, which then exits 0. Any
error before that comes back through a pipe and the parent reports it with
the usual exit code, so ``doublecrypt mount ... && ls MOUNTPOINT`` works.

With ``--engine c`` the requests are served by the C program
``doublecrypt-fuse`` (``make fuse``) instead of Python: this command unlocks
the key as usual and hands it over through a pipe (never on the command
line); in the foreground it replaces itself with the program, in the
background the program forks and reports readiness the same way. The
default, ``auto``, is ``c`` for image files when the program is there (it
serves metadata-heavy work several times faster) and ``python`` otherwise.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click

import doublecrypt

from ..objectstore.location import is_object_store_url
from .common import image_argument
from .errors import EXIT_FAILURE, EXIT_OK, CliError, handle_errors
from .keys import KeySource, image_passphrase, key_options, open_volume, read_header

__all__ = ["mount"]

READY = b"ready\n"
ERROR = b"error "
ENV_FUSE_PROGRAM = "DOUBLECRYPT_FUSE"


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


def _fuse_program_path() -> str:
    """$DOUBLECRYPT_FUSE, else build/doublecrypt-fuse of the source tree this
    package runs from."""
    env = os.environ.get(ENV_FUSE_PROGRAM)
    return env or str(Path(__file__).resolve().parents[3] / "build" / "doublecrypt-fuse")


def choose_engine(engine: str, image: str) -> str:
    """``auto``: the C program for image files when it can run (a
    $DOUBLECRYPT_FUSE that is set always means c, so a wrong path is an error
    rather than a silent fallback), else Python."""
    from .remote import is_remote

    if engine != "auto":
        return engine
    if is_remote(image) or is_object_store_url(image):
        return "python"
    if os.environ.get(ENV_FUSE_PROGRAM) or os.access(_fuse_program_path(), os.X_OK):
        return "c"
    return "python"


def fuse_program() -> str:
    """The C FUSE program (see _fuse_program_path), or a CliError saying how
    to get it."""
    env = os.environ.get(ENV_FUSE_PROGRAM)
    program = _fuse_program_path()
    if not os.access(program, os.X_OK):
        where = f"${ENV_FUSE_PROGRAM}={env}" if env else program
        raise CliError(
            f"--engine c needs the doublecrypt-fuse program, not found at {where} "
            "(build it with `make fuse`, or set $DOUBLECRYPT_FUSE)",
            EXIT_FAILURE,
        )
    return program


def _unlock_key(image: str, keys: KeySource) -> bytearray:
    """The master key, found as open_volume finds it (the C program checks it)."""
    if keys.key_file is None:
        return doublecrypt.unlock_image(image, image_passphrase(image, keys))
    read_header(image)
    return keys.key()


def _mount_with_c(
    image: str,
    mountpoint: str,
    foreground: bool,
    read_only: bool,
    keys: KeySource,
    commit_interval: float | None = None,
) -> None:
    """Serve the mount with doublecrypt-fuse, the key passed through a pipe."""
    from .remote import is_remote

    if is_remote(image) or is_object_store_url(image):
        raise CliError(
            "--engine c mounts image files only, not remote or object-store volumes", EXIT_FAILURE
        )
    program = fuse_program()
    image = os.path.abspath(image)  # the daemon leaves the working directory
    key = _unlock_key(image, keys)
    read_fd, write_fd = os.pipe()
    try:
        try:
            os.write(write_fd, key)  # 32 bytes: a pipe takes them without a reader
        finally:
            key[:] = bytes(len(key))
            os.close(write_fd)
        argv = [program, "--key-fd", str(read_fd), image, mountpoint]
        if read_only:
            argv.append("--read-only")
        if commit_interval is not None:
            argv += ["--commit-interval", repr(commit_interval)]
        if foreground:
            # The program becomes this process: signals and exit status are its own.
            argv.append("-f")
            os.set_inheritable(read_fd, True)
            os.execv(program, argv)
        code = subprocess.run(argv, pass_fds=(read_fd,), check=False).returncode
    finally:
        os.close(read_fd)
    if code != 0:
        raise click.exceptions.Exit(code)  # the program said why on stderr
    # It said "mounted ... (process N)" itself: only it knows the daemon's id.


@click.command()
@image_argument
@click.argument("mountpoint", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option(
    "-f", "--foreground", is_flag=True, help="Stay in the foreground (Ctrl-C or SIGTERM unmounts)."
)
@click.option("--read-only", is_flag=True, help="Mount read-only: every change fails with EROFS.")
@click.option(
    "--engine",
    type=click.Choice(["auto", "python", "c"]),
    default="auto",
    show_default=True,
    help="Who serves the requests: Python (mfusepy), or the C program doublecrypt-fuse "
    "(`make fuse`; $DOUBLECRYPT_FUSE names another copy); auto: c for image files when "
    "the program is there, else python.",
)
@click.option(
    "--commit-interval",
    type=click.FloatRange(0, 86400),
    default=None,
    metavar="SECONDS",
    help="--engine c: changes are durable on fsync, at unmount, or this many seconds "
    "after they are made (default 1; 0 commits every operation on its own).",
)
@key_options
def mount(
    image: str,
    mountpoint: str,
    foreground: bool,
    read_only: bool,
    engine: str,
    commit_interval: float | None,
    keys: KeySource,
) -> None:
    """Mount IMAGE on the directory MOUNTPOINT (FUSE) until unmounted.

    Unmount with 'fusermount3 -u MOUNTPOINT' (or umount as root): that syncs
    and closes the image. In the background (the default) the command
    returns once the mount is ready. Files and directories only: symbolic
    and hard links are refused (ENOTSUP), owners are not kept.
    """
    mountpoint = os.path.abspath(mountpoint)
    if os.path.ismount(mountpoint):
        raise CliError(f"{mountpoint} is already a mount point", EXIT_FAILURE)
    engine = choose_engine(engine, image)
    if engine == "c":
        _mount_with_c(image, mountpoint, foreground, read_only, keys, commit_interval)
        return
    if commit_interval is not None:
        raise CliError("--commit-interval needs --engine c", EXIT_FAILURE)
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
