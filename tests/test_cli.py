"""The ``doublecrypt`` command: every command through click's CliRunner, and
the installed console script once in a real subprocess.

Key slots use ``--kdf minimum`` and passphrases come from the environment or
a file, so the whole module runs in a few seconds."""

from __future__ import annotations

import filecmp
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import doublecrypt
from doublecrypt.cli import main
from doublecrypt.cli.errors import CliError, exit_code_for
from doublecrypt.cli.keys import ENV_NEW_PASSPHRASE, ENV_PASSPHRASE
from doublecrypt.cli.sizes import format_size, parse_size

PASS = "correct horse"
MTIME_FILE = 1_600_000_000_123_456_789
MTIME_DIR = 1_500_000_000_987_654_321


def make_runner() -> CliRunner:
    # Click < 8.2 mixes stderr into stdout unless told not to; later ones
    # always keep result.stderr separate (and dropped the argument).
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg,unused-ignore]
    return CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_PASSPHRASE, ENV_NEW_PASSPHRASE, "DOUBLECRYPT_DEBUG"):
        monkeypatch.delenv(name, raising=False)


def run(
    *args: str,
    code: int = 0,
    input: str | bytes | None = None,
    passphrase: str | None = PASS,
    env: Mapping[str, str] | None = None,
    prompts: bool = False,
) -> Result:
    """Invoke the command; check the exit code and, on failure, the one clean line."""
    full_env = {ENV_PASSPHRASE: passphrase} if passphrase is not None else {}
    full_env.update(env or {})
    result = make_runner().invoke(
        main, list(args), input=input, env=full_env, prog_name="doublecrypt"
    )
    detail = f"{args}: exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.exit_code == code, detail
    if code not in (0, 2):  # 2 is click's usage error, in click's format
        lines = result.stderr.strip().splitlines()
        if prompts:  # prompts (and click's retry messages) come first on stderr
            lines = lines[-1:]
        assert len(lines) == 1 and lines[0].startswith("doublecrypt: error: "), detail
    assert "Traceback" not in result.stderr + result.stdout, detail
    return result


def init(image: Path, *extra: str, **kw: Any) -> Result:
    return run("init", str(image), "--size", "4M", "--kdf", "minimum", *extra, **kw)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "vol.img"
    init(path)
    return path


def ls_json(image: Path, path: str = "/", **kw: Any) -> list[dict[str, Any]]:
    entries = json.loads(run("ls", str(image), path, "--json", **kw).stdout)
    assert isinstance(entries, list)
    return entries


def make_tree(root: Path) -> None:
    """Nested directories, binary files of several sizes, an empty file, set mtimes."""
    (root / "docs" / "deep" / "deeper").mkdir(parents=True)
    (root / "empty_dir").mkdir()
    (root / "docs" / "all_bytes.bin").write_bytes(bytes(range(256)) * 33)
    (root / "docs" / "deep" / "random.bin").write_bytes(os.urandom(300_001))
    (root / "docs" / "deep" / "deeper" / "small.txt").write_text("hello\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "nul.bin").write_bytes(b"\x00\xff" * 4096)
    for path in sorted(root.rglob("*"), reverse=True):  # contents before their directory
        t = MTIME_DIR if path.is_dir() else MTIME_FILE
        os.utime(path, ns=(t, t))


def assert_same_tree(a: Path, b: Path) -> None:
    cmp = filecmp.dircmp(a, b)
    assert not (cmp.left_only or cmp.right_only or cmp.funny_files), (a, b)
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    assert not (mismatch or errors), (mismatch, errors)
    for name in cmp.common:
        assert (a / name).stat().st_mtime_ns == (b / name).stat().st_mtime_ns, name
    for name in cmp.common_dirs:
        assert_same_tree(a / name, b / name)


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


# ---- round trips ------------------------------------------------------------------


def test_put_ls_get_round_trip_keeps_contents_and_mtimes(image: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    run("put", str(image), str(src), "/")
    top = {e["name"]: e for e in ls_json(image, "/src")}
    assert set(top) == {"docs", "empty_dir", "empty.txt", "nul.bin"}
    assert top["docs"]["type"] == "directory" and top["nul.bin"]["type"] == "file"
    assert top["nul.bin"]["size"] == 8192 and top["nul.bin"]["mtime_ns"] == MTIME_FILE
    assert top["docs"]["mtime_ns"] == MTIME_DIR
    assert set(top["nul.bin"]) == {"name", "type", "size", "mtime_ns", "inode"}
    # Without a leading slash, a path is still from the root.
    assert [e["name"] for e in ls_json(image, "src/docs/deep")] == ["deeper", "random.bin"]

    out = tmp_path / "out"
    run("get", str(image), "/src", str(out))  # DEST missing: /src becomes out
    assert_same_tree(src, out)
    into = tmp_path / "into"
    into.mkdir()
    run("get", str(image), "/src/docs", "src/nul.bin", str(into))  # into a directory
    assert_same_tree(src / "docs", into / "docs")
    assert (into / "nul.bin").read_bytes() == (src / "nul.bin").read_bytes()
    assert (into / "nul.bin").stat().st_mtime_ns == MTIME_FILE

    plain = run("ls", str(image), "/src").stdout.splitlines()
    assert plain == ["docs/", "empty.txt", "empty_dir/", "nul.bin"]
    long = run("ls", str(image), "/src", "-l").stdout.splitlines()
    assert long[0].startswith("dir") and long[0].endswith(" docs")
    assert "8192" in long[3] and long[3].endswith(" nul.bin")


def test_put_several_sources_into_a_new_directory(image: Path, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    args = [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    run("put", str(image), *args, "/new", code=3)  # several SRC need a directory
    run("put", str(image), *args, "/new/")  # a trailing '/' creates it
    assert [e["name"] for e in ls_json(image, "/new")] == ["a.txt", "b.txt"]
    run("put", str(image), str(tmp_path / "a.txt"), "/new/b.txt")  # replaces a file
    assert run("cat", str(image), "/new/b.txt").stdout == "a"
    run("put", str(image), str(tmp_path / "missing"), "/", code=3)


def test_cat_and_stdin_stdout(image: Path) -> None:
    data = bytes(range(256)) * 1000 + b"\r\n\x00"
    run("put", str(image), "-", "/nodir/stdin.bin", input=data, code=3)
    run("put", str(image), "-", "/stdin.bin", input=data)
    assert run("cat", str(image), "/stdin.bin").stdout_bytes == data
    assert run("get", str(image), "stdin.bin", "-").stdout_bytes == data
    run("put", str(image), "-", "/two.txt", input=b"two\n")
    both = run("cat", str(image), "/two.txt", "/stdin.bin").stdout_bytes
    assert both == b"two\n" + data
    run("put", str(image), "-", "/", input=b"x", code=1)  # stdin needs a file path
    run("cat", str(image), "/", code=1)  # a directory
    run("get", str(image), "/two.txt", "/stdin.bin", "-", code=2)


# ---- tree changes -----------------------------------------------------------------


def test_mkdir_rm_mv(image: Path) -> None:
    run("mkdir", str(image), "/a/b/c", code=3)
    run("mkdir", str(image), "-p", "/a/b/c", "x/y")
    run("mkdir", str(image), "-p", "/a/b/c")  # existing is fine with -p
    run("mkdir", str(image), "/a", code=4)
    run("put", str(image), "-", "/a/b/c/f.txt", input=b"f")
    run("rm", str(image), "/a", code=1)  # a directory without -r
    run("mv", str(image), "/a/b/c/f.txt", "/x")  # into an existing directory
    run("mv", str(image), "/x/f.txt", "/x/g.txt")  # a rename
    assert [e["name"] for e in ls_json(image, "/x")] == ["g.txt", "y"]
    run("mv", str(image), "/nope", "/x", code=3)
    run("rm", str(image), "-r", "/a", "/x/g.txt")
    assert [e["name"] for e in ls_json(image)] == ["x"]
    run("rm", str(image), "/a", code=3)
    run("rm", str(image), "-r", "/", code=1)
    run("fsck", str(image))


def test_stat_df_fsck(image: Path) -> None:
    run("put", str(image), "-", "/f.bin", input=os.urandom(100_000))
    st = json.loads(run("stat", str(image), "f.bin", "--json").stdout)
    assert st["path"] == "/f.bin" and st["name"] == "f.bin" and st["type"] == "file"
    assert st["size"] == 100_000 and st["mode"] == 0o644 and st["blocks"] >= 2
    assert {"inode", "mtime_ns", "ctime_ns"} <= set(st)
    root = json.loads(run("stat", str(image), "/", "--json").stdout)
    assert root["type"] == "directory"
    assert "size:" in run("stat", str(image), "/f.bin").stdout
    df = json.loads(run("df", str(image), "--json").stdout)
    assert df["block_size"] == 65536 and df["total_blocks"] == 64
    assert df["used_blocks"] + df["free_blocks"] == df["total_blocks"]
    assert df["total_bytes"] == 4 << 20 and df["used_bytes"] == df["used_blocks"] * 65536
    assert df["files"] == 1 and df["directories"] == 1 and df["generation"] >= 1
    assert "block size:" in run("df", str(image)).stdout
    assert "clean" in run("fsck", str(image)).stdout
    run("stat", str(image), "/nope", code=3)


# ---- keys ---------------------------------------------------------------------------


def test_init_prompts_twice_and_refuses_an_existing_image(tmp_path: Path) -> None:
    image = tmp_path / "p.img"
    result = init(image, passphrase=None, input="pw\npw\n")
    assert "key slot 0" in result.stdout and "Repeat for confirmation" in result.stderr
    run("ls", str(image), passphrase="pw")
    mismatch = init(tmp_path / "q.img", passphrase=None, input="pw\nother\n", code=1, prompts=True)
    assert "do not match" in mismatch.stderr  # asked again, then EOF
    assert mismatch.stderr.endswith("doublecrypt: error: aborted\n")
    assert not (tmp_path / "q.img").exists()
    init(image, code=4)


def test_wrong_passphrase_fails_cleanly_and_changes_nothing(image: Path, tmp_path: Path) -> None:
    run("put", str(image), "-", "/f", input=b"data")
    before = image.read_bytes()
    for command, args in (
        (["ls"], []),
        (["put"], ["-", "/g"]),
        (["rm"], ["/f"]),
        (["fsck"], []),
        (["key", "add"], []),
    ):
        result = run(*command, str(image), *args, code=5, passphrase="wrong", input=b"x")
        assert "wrong passphrase" in result.stderr
    run("passwd", str(image), code=5, passphrase="wrong", env={ENV_NEW_PASSPHRASE: "n"})
    assert image.read_bytes() == before


def test_passphrase_file_and_passwd(image: Path, tmp_path: Path) -> None:
    current = tmp_path / "current"
    current.write_text(PASS + "\n")
    new = tmp_path / "new"
    new.write_text("new passphrase\r\nsecond line is ignored\n")
    run("ls", str(image), "--passphrase-file", str(current), passphrase=None)
    result = run(
        "passwd",
        str(image),
        "--kdf",
        "minimum",
        "--passphrase-file",
        str(current),
        "--new-passphrase-file",
        str(new),
    )
    assert "passphrase changed" in result.stdout
    run("ls", str(image), code=5)  # the old one is gone
    run("ls", str(image), passphrase="new passphrase")
    # Interactively: current, then the new one twice.
    run("passwd", str(image), "--kdf", "minimum", passphrase=None, input="new passphrase\nx\nx\n")
    run("ls", str(image), passphrase="x")
    assert len(doublecrypt.image_info(image).key_slots) == 1


def test_key_add_list_remove(image: Path) -> None:
    run("key", "add", str(image), "--kdf", "minimum", env={ENV_NEW_PASSPHRASE: "second"})
    slots = json.loads(run("key", "list", str(image), "--json", passphrase=None).stdout)
    assert [s["slot"] for s in slots] == [0, 1] and slots[0]["kdf"] == "argon2id"
    assert slots[0]["opslimit"] == doublecrypt.KdfParams.minimum().opslimit
    assert "slot 1: argon2id" in run("key", "list", str(image), passphrase=None).stdout
    run("ls", str(image), passphrase="second")
    run("key", "remove", str(image), "0", passphrase="second")
    run("ls", str(image), code=5)
    run("key", "remove", str(image), "0", code=3, passphrase="second")  # already empty
    run("key", "remove", str(image), "1", code=1, passphrase="second")  # the last one
    run("ls", str(image), passphrase="second")


def test_key_file(tmp_path: Path) -> None:
    raw = tmp_path / "key.bin"
    raw.write_bytes(os.urandom(32))
    hexed = tmp_path / "key.hex"
    hexed.write_text(raw.read_bytes().hex() + "\n")
    image = tmp_path / "k.img"
    init(image, "--key-file", str(raw), passphrase=None)
    assert doublecrypt.image_info(image).key_slots == []
    run("put", str(image), "-", "/f", "--key-file", str(hexed), input=b"k", passphrase=None)
    assert run("cat", str(image), "/f", "--key-file", str(raw)).stdout == "k"
    run("ls", str(image), code=5)  # no key slot for a passphrase
    other = tmp_path / "other.bin"
    other.write_bytes(os.urandom(32))
    run("ls", str(image), "--key-file", str(other), code=5)
    other.write_bytes(os.urandom(31))
    run("ls", str(image), "--key-file", str(other), code=1)
    run("ls", str(image), "--key-file", str(raw), "--passphrase-file", str(raw), code=2)
    run("passwd", str(image), "--key-file", str(raw), code=1)
    run("key", "add", str(image), "--key-file", str(raw), "--kdf", "minimum", input="p\np\n")
    run("ls", str(image), passphrase="p")


def test_info_needs_no_key(image: Path) -> None:
    data = json.loads(run("info", str(image), "--json", passphrase=None, input="").stdout)
    assert data["block_size"] == 65536 and data["total_blocks"] == 64
    assert data["file_size"] == data["size"] == 4 << 20
    assert data["format_version"] == doublecrypt.FORMAT_VERSION
    assert [s["slot"] for s in data["key_slots"]] == [0]
    assert PASS not in json.dumps(data)
    assert "key slots:    1" in run("info", str(image), passphrase=None).stdout


# ---- errors ---------------------------------------------------------------------------


def test_missing_or_foreign_images_and_bad_paths(image: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.img")
    for command in ("ls", "info", "df", "fsck"):
        assert "no such image" in run(command, missing, code=3).stderr
    run("key", "list", missing, code=3)
    junk = tmp_path / "junk.img"
    junk.write_bytes(os.urandom(1 << 20))
    assert "not a doublecrypt image" in run("ls", str(junk), code=6).stderr
    run("info", str(junk), code=6)
    run("ls", str(image), "/nope", code=3)
    run("cat", str(image), "nope.txt", code=3)
    run("get", str(image), "/nope", str(tmp_path / "out"), code=3)
    run("put", str(image), "-", "/f", input=b"x")
    run("ls", str(image), "/f/below", code=3)  # through a file


def test_no_space_exit_7_and_the_file_is_not_half_written(image: Path) -> None:
    run("put", str(image), "-", "/big", input=os.urandom(5 << 20), code=7)
    run("ls", str(image), "/big", code=3)  # the one commit per file was rolled back
    run("fsck", str(image))


def test_tampered_image_fails_authentication(image: Path) -> None:
    run("put", str(image), "-", "/f", input=os.urandom(200_000))
    data = bytearray(image.read_bytes())
    for offset in range(3 * 65536, len(data), 65536):  # every sealed block
        data[offset + 100] ^= 1
    image.write_bytes(bytes(data))
    assert "fsck found problems" in run("fsck", str(image), code=6).stderr
    assert "passphrase is right" in run("cat", str(image), "/f", code=5).stderr


def test_usage_errors_and_sizes(image: Path) -> None:
    run("init", str(image) + "2", "--size", "lots", code=2)
    run("init", str(image) + "2", "--size", "4M", "--block-size", "3K", code=2)
    run("nonsense", code=2)
    assert parse_size("64K") == 65536 and parse_size("1G") == 1 << 30
    assert parse_size("1.5m") == 3 << 19 and parse_size("2TiB") == 2 << 40
    assert parse_size("4096") == 4096
    assert format_size(65536) == "64 KiB" and format_size(3 << 19) == "1.5 MiB"
    assert exit_code_for(doublecrypt.errors.NoSpaceError(28, "full")) == 7
    assert exit_code_for(doublecrypt.errors.StorageIOError(5, "io")) == 8
    assert exit_code_for(OSError(28, "disk full")) == 7


def test_help_on_every_command() -> None:
    commands = list(all_commands(main))
    assert {("init",), ("put",), ("get",), ("key", "add"), ("speed",), ("demo",)} <= set(commands)
    top = run("--help").stdout
    assert "Exit codes" in top and "authentication failed" in top
    for path in commands:
        assert "Usage: doublecrypt " + " ".join(path) in run(*path, "--help").stdout
    assert "for tests only" in run("init", "--help").stdout


def test_speed() -> None:
    assert "round trips verified" in run("speed", "--seconds", "0.001").stdout


# ---- the installed console script ----------------------------------------------------


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("doublecrypt")
    if not script.exists():
        pytest.skip("the doublecrypt console script is not installed next to python")
    secret = tmp_path / "pass"
    secret.write_text("script pass\n")
    image = tmp_path / "s.img"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOUBLECRYPT_")}

    def sh(*args: str, data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(script), *args], input=data, capture_output=True, env=env, timeout=60
        )

    keyed = ("--passphrase-file", str(secret))
    created = sh(
        "init", str(image), "--size", "1M", "--block-size", "4K", "--kdf", "minimum", *keyed
    )
    assert created.returncode == 0, created.stderr
    assert sh("put", str(image), "-", "/hello", *keyed, data=b"\x00hi\xff").returncode == 0
    cat = sh("cat", str(image), "/hello", *keyed)
    assert cat.returncode == 0 and cat.stdout == b"\x00hi\xff"
    secret.write_text("not it\n")
    wrong = sh("ls", str(image), *keyed)
    assert wrong.returncode == 5
    assert (
        wrong.stderr.decode().strip() == "doublecrypt: error: wrong passphrase (no key slot opens)"
    )
    assert b"Traceback" not in wrong.stderr


def test_mount_engine_auto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from doublecrypt.cli import mount as mount_cli

    program = tmp_path / "doublecrypt-fuse"
    monkeypatch.delenv(mount_cli.ENV_FUSE_PROGRAM, raising=False)
    monkeypatch.setattr(mount_cli, "_fuse_program_path", lambda: str(program))
    assert mount_cli.choose_engine("auto", "vol.img") == "python"  # not built
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    assert mount_cli.choose_engine("auto", "vol.img") == "c"
    assert mount_cli.choose_engine("auto", "remote://volume") == "python"  # remote volume
    assert mount_cli.choose_engine("python", "vol.img") == "python"
    program.unlink()
    monkeypatch.setenv(mount_cli.ENV_FUSE_PROGRAM, str(program))
    assert mount_cli.choose_engine("auto", "vol.img") == "c"  # set: a wrong path is an error
    with pytest.raises(CliError, match="not found"):
        mount_cli.fuse_program()
