"""The writer lease of a volume in an object store: one writer at a time.

Blocks are overwritten in place once the engine has freed them, and two
writers working from the same generation would pick the same free blocks:
the loser's writes could land on the winner's committed tree. So a client
writes only while it holds the volume's lease, an object (``writer.json``)
changed exclusively by compare-and-swap on its ETag (``If-Match``;
``If-None-Match: *`` creates it). Taking the lease also checks that the
client's view is current (see ObjectStore): together that makes every
commit's base the latest generation, or a ConflictError.

A holder renews the lease while it writes (and while a commit of its is
unfinished) and lets it go when it has been idle for ``idle_release``
seconds with everything committed (or closes); a holder that died loses it
after ``lease_seconds`` without renewal, judged by the service's own clock
(the object's Last-Modified against the Date of the response), so client
clocks do not matter. A holder that stalls longer than that finds out at
its next write (the renewal's If-Match fails) and stops with a
ConflictError. Details: docs/OBJECT_STORE.md.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable

from ..errors import ConflictError
from .s3io import S3IO

__all__ = ["WriterLease"]


class WriterLease:
    def __init__(
        self,
        io: S3IO,
        key: str,
        *,
        lease_seconds: float = 60.0,
        idle_release: float = 2.0,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self._io = io
        self._key = key
        self._busy = busy  # writes not yet committed: never let go then
        self.lease_seconds = lease_seconds
        self.idle_release = idle_release
        self.owner = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._etag: str | None = None  # ours while held
        self._renewed = 0.0  # time.monotonic() of the last successful write
        self._last_use = 0.0
        self._timer: threading.Timer | None = None

    @property
    def held(self) -> bool:
        return self._etag is not None

    def _body(self, state: str) -> bytes:
        return json.dumps(
            {"state": state, "owner": self.owner, "lease_seconds": self.lease_seconds}
        ).encode()

    def ensure(self, view_is_current: Callable[[], bool]) -> None:
        """Hold the lease before a write: take it (then `view_is_current`
        must hold, else it is given back and ConflictError raised), or renew
        it when a third of its time has passed."""
        with self._lock:
            now = time.monotonic()
            self._last_use = now
            if self._etag is None:
                self._acquire()
                if not view_is_current():
                    self._release_locked()
                    raise ConflictError(
                        "another writer committed to this volume since it was read: "
                        "refresh and retry"
                    )
            elif now - self._renewed > self.lease_seconds / 3:
                self._put_held(self._etag, "the writer lease was lost (expired and taken over)")
            self._arm_idle_timer()

    def _acquire(self) -> None:
        found = self._io.get_meta(self._key)
        if found is None:
            self._put_held(None, "another writer took the lease first")
            return
        body, etag, age = found
        try:
            state = json.loads(body)
        except ValueError:
            state = {}
        if not isinstance(state, dict):
            state = {}
        if state.get("state") == "held":
            limit = float(state.get("lease_seconds", self.lease_seconds))
            if age is None:  # no clock to judge by: never take a lease by guesswork
                raise ConflictError(
                    "another client holds this volume's writer lease (the store gave no "
                    "Date/Last-Modified to tell whether it expired): retry later"
                )
            if age < limit:
                raise ConflictError(
                    f"another client is writing this volume (its lease ends in at most "
                    f"{limit - age:.0f} s unless renewed): retry later"
                )
        self._put_held(etag, "another writer took the lease first")

    def _put_held(self, etag: str | None, lost: str) -> None:
        new = self._io.put_if(self._key, self._body("held"), etag)
        if new is None:
            self._etag = None
            raise ConflictError(lost)
        self._etag = new
        self._renewed = time.monotonic()

    def release(self) -> None:
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._etag is None:
            return
        etag, self._etag = self._etag, None
        # A failed release (lost already, or the service is away) leaves the
        # lease to expire; nothing else depends on it.
        with contextlib.suppress(Exception):
            self._io.put_if(self._key, self._body("free"), etag)

    def _arm_idle_timer(self) -> None:
        if self._timer is not None or self.idle_release <= 0:
            return
        self._timer = threading.Timer(self.idle_release, self._idle_check)
        self._timer.daemon = True
        self._timer.start()

    def _idle_check(self) -> None:
        with self._lock:
            self._timer = None
            if self._etag is None:
                return
            idle = time.monotonic() - self._last_use
            if self._busy():
                # A commit in progress keeps the lease alive, however slow.
                try:
                    if time.monotonic() - self._renewed > self.lease_seconds / 3:
                        self._put_held(self._etag, "lost")
                except Exception:
                    return  # lost or unreachable: the next write finds out
                self._timer = threading.Timer(self.idle_release, self._idle_check)
                self._timer.daemon = True
                self._timer.start()
            elif idle >= self.idle_release:
                self._release_locked()
            else:
                self._timer = threading.Timer(self.idle_release - idle, self._idle_check)
                self._timer.daemon = True
                self._timer.start()
