"""Output files written whole: a report, a `show` or a comparison appears complete or not at all.

No file is written through a symbolic link the suite did not make: an output directory, a lock or
an index that is a link is refused in one line (a results directory from someone else may carry
links to anywhere); entries that are links are replaced, never followed.

Everything is written into a fresh hidden directory inside the output directory, then each entry
it holds replaces the entry of the same name there (a directory whole, with nothing of the earlier
one left), under a lock, so that two commands writing one directory at once do not mix: the last
to finish wins, whole. A command that fails half-way (a full disk, a read-only directory, Ctrl-C)
leaves the earlier files as they were, and says so in one line; Ctrl-C stops such a command
every time (`stop_at_once`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..problem.errors import UserError

LOCK_NAME = ".runge-bench.lock"
STALE_STAGING_S = 3600.0  # a staging directory this old is a killed command's: removed by the next one
INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C

_staging: set[Path] = set()  # staging directories being written now
_swapping = False  # entries are being moved into an output directory: an interrupt waits for it
_interrupted = False


def stop_at_once(signum: int, frame: object) -> None:
    """A SIGINT / SIGTERM handler for commands that only read stores and write staged outputs
    (report, show, compare). The usual KeyboardInterrupt can be swallowed when it lands in a
    finaliser (a weakref callback prints "Exception ignored" and the command runs on); this stops
    the process every time: the staging directories are removed, the earlier outputs stay as they
    were, and it exits with status 130. During a swap it waits for the swap to finish, so that an
    output directory is never left half old, half new."""
    global _interrupted
    _interrupted = True
    if _swapping:
        return  # _swap_in exits when it is done
    _exit_interrupted()


def _exit_interrupted() -> None:
    for d in list(_staging):
        shutil.rmtree(d, ignore_errors=True)
    sys.stderr.write("interrupted: nothing was written; what the output directory held is as it was\n")
    sys.stderr.flush()
    os._exit(INTERRUPTED)


def refuse_link(path: Path, why: str) -> None:
    """A UserError when `path` is a symbolic link: the suite writes nothing through a link it did
    not make."""
    if Path(path).is_symlink():
        raise UserError(f"is a symbolic link: {why}", path=path)


def check_output(out: Path, what: str) -> None:
    """Refuse an output directory, or its lock, that is a symbolic link (written_whole checks them
    again when it writes; a command calls this first to refuse before its work)."""
    refuse_link(out, f"{what} is not written through it; choose another --out")
    refuse_link(Path(out) / LOCK_NAME, "the lock file is not opened through it")


def open_lock(out: Path):
    """out's lock file, opened for appending without following a symbolic link (O_NOFOLLOW)."""
    path = Path(out) / LOCK_NAME
    refuse_link(path, "the lock file is not opened through it")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    return os.fdopen(fd, "a")


def write_text_whole(path: Path, text: str) -> None:
    """path's new text, written into a fresh temporary file beside it (created exclusively: never
    an existing file or link) and renamed over it, so that a reader sees the old text or the new.
    An OSError is the caller's to turn into a UserError."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)  # replaces a link at path, never what it points to
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_stale_staging(out: Path) -> None:
    """Staging directories a killed command left behind (older than STALE_STAGING_S; a running
    command's are fresh), removed without following links."""
    now = time.time()
    for d in out.glob(".staging-*"):
        try:
            if not d.is_symlink() and d.is_dir() and now - d.stat().st_mtime > STALE_STAGING_S:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def _why(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "the disk is full"
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "a read-only filesystem or no permission"
    return e.strerror or type(e).__name__


@contextmanager
def written_whole(out: Path, what: str) -> Iterator[Path]:
    """A fresh directory to write `what` (e.g. "the report") into; when the block ends without an
    error, its entries replace out's entries of the same names. An OSError (no space, no
    permission) becomes a UserError naming `out`; out keeps what it had."""
    out = Path(out)
    refuse_link(out, f"{what} is not written through it; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(out)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    except OSError as e:
        raise UserError(f"cannot write {what} here ({_why(e)}); choose another --out", path=out) from None
    _staging.add(staging)
    try:
        yield staging
        _swap_in(staging, out)
    except OSError as e:
        raise UserError(
            f"cannot write {what} here ({_why(e)}); nothing of it was left there, and what the directory "
            "held before is as it was; free space or choose another --out",
            path=out,
        ) from None
    finally:
        _staging.discard(staging)
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: Path, out: Path) -> None:
    """Move every entry of staging into out, replacing out's entry of the same name whole (the
    earlier one goes into staging, to be removed with it), holding out's lock meanwhile."""
    global _swapping
    with open_lock(out) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _swapping = True
        try:
            for new in sorted(staging.iterdir()):
                if new.name.startswith(".earlier-"):
                    continue
                old = out / new.name
                if old.exists() or old.is_symlink():
                    old.rename(staging / f".earlier-{new.name}")
                new.rename(old)
        finally:
            _swapping = False
            fcntl.flock(lock, fcntl.LOCK_UN)
    if _interrupted:  # an interrupt came during the swap: the new files are in place, whole
        sys.stderr.write("interrupted after the output was written whole\n")
        sys.stderr.flush()
        os._exit(INTERRUPTED)
