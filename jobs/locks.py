"""One run of a job at a time: a lock file per run in the lake, created only if absent.

``<lake_root>/_locks/<job>/`` holds numbered files. ``000000000007.lock`` says who took
generation 7 (owner, host, pid, when); ``000000000007.free`` says that run let it go. The
highest-numbered ``.lock`` is the state of the lock; it is never deleted, so numbers only grow.

- **acquire**: read the highest generation. Held by a run that is alive and not stale -> refuse.
  Otherwise create the next generation's file with create-if-absent. Two runs that try at once
  both try to create the same number and only one can; the other refuses. A run that read an
  older state tries a number that is taken, or one already cleaned up below a higher one: it
  sees the higher one after its create and refuses.
- **release**: write ``.free`` for the run's own generation (``dmp unlock`` for whoever holds it).
- A lock whose owner process is gone (same host) or that is older than
  ``ops.lock_stale_minutes`` is taken over by the same step, so a killed run never blocks the
  next one for long. Generations below the one just taken are deleted.

Create-if-absent is ``O_CREAT | O_EXCL`` on a local lake and Hadoop's ``create`` without
overwrite elsewhere: atomic on HDFS, and on S3 a PUT with ``If-None-Match`` (S3A's builder
option ``fs.option.create.conditional.overwrite``, Hadoop 3.4.2+; S3 and MinIO answer 412 to
the loser).

An erasure and the jobs that write the lake exclude each other (``writer_lock``, ``erase_lock``):
an erasure vacuums every table with no retention, which would delete files a concurrent
writer's commit is about to reference, and rewrites files a concurrent export or ingest reads.
Each side takes its own lock first, then looks for the other's: whichever looks second sees the
first, so both never run. A writer that sees an erasure lets its lock go and waits; an erasure
that sees writers keeps its lock and waits for them to finish, so it is never starved.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jobs.lake import Lake
from jobs.report import say

_NAME = re.compile(r"(\d{12})\.(lock|free)")


class LockedError(RuntimeError):
    """Another run of the same job holds the lock."""


class _LocalFolder:
    """A folder on this machine: create-if-absent through O_EXCL."""

    def __init__(self, path: str):
        self.path = path.removeprefix("file://").removeprefix("file:")

    def names(self) -> list[str]:
        try:
            return os.listdir(self.path)
        except FileNotFoundError:
            return []

    def create(self, name: str, text: str) -> bool:
        os.makedirs(self.path, exist_ok=True)
        try:
            fd = os.open(os.path.join(self.path, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return True

    def read(self, name: str) -> tuple[str, float] | None:
        """-> (text, modification time), None when the file is gone."""
        path = os.path.join(self.path, name)
        try:
            with open(path) as fh:
                return fh.read(), os.path.getmtime(path)
        except FileNotFoundError:
            return None

    def delete(self, name: str) -> None:
        try:
            os.remove(os.path.join(self.path, name))
        except FileNotFoundError:
            pass


class _HadoopFolder:
    """A folder on any file system Spark writes to (s3a://, hdfs://, abfss://), through the
    JVM's Hadoop FileSystem with the session's configuration."""

    def __init__(self, spark, path: str):
        self.jvm = spark._jvm
        self.dir = self.jvm.org.apache.hadoop.fs.Path(path)
        self.fs = self.dir.getFileSystem(spark._jsc.hadoopConfiguration())

    def _path(self, name: str):
        return self.jvm.org.apache.hadoop.fs.Path(self.dir, name)

    def names(self) -> list[str]:
        if not self.fs.exists(self.dir):
            return []
        return [s.getPath().getName() for s in self.fs.listStatus(self.dir)]

    def create(self, name: str, text: str) -> bool:
        from py4j.protocol import Py4JJavaError

        try:
            builder = self.fs.createFile(self._path(name)).overwrite(False)
            # S3A: PUT with If-None-Match (Hadoop 3.4.2+); other file systems ignore the option
            out = builder.opt("fs.option.create.conditional.overwrite", True).build()
            try:
                out.write(bytearray(text.encode()))
            finally:
                out.close()  # S3A sends the conditional PUT here
        except Py4JJavaError as exc:
            what = exc.java_exception.getClass().getName() + str(exc.java_exception)
            # exists already, or S3 refused the conditional PUT (412: someone else's is there)
            if "FileAlreadyExists" in what or "Status Code: 412" in what:
                return False
            raise
        return True

    def read(self, name: str) -> tuple[str, float] | None:
        path = self._path(name)
        if not self.fs.exists(path):
            return None
        stream = self.fs.open(path)
        try:
            text = self.jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()
        return text, self.fs.getFileStatus(path).getModificationTime() / 1000

    def delete(self, name: str) -> None:
        self.fs.delete(self._path(name), False)


def _folder(lake: Lake, key: str):
    path = f"{lake.root}/_locks/{key}"
    if "://" in path and not path.startswith("file:"):
        return _HadoopFolder(lake.spark, path)
    return _LocalFolder(path)


@dataclass
class _State:
    generation: int
    free: bool
    info: dict | None  # None: the file is there but not written yet (or unreadable)
    written_at: float


def _state(folder) -> _State | None:
    """The highest generation, or None for a lock never taken."""
    for _ in range(5):
        gens: dict[int, set[str]] = {}
        for name in folder.names():
            m = _NAME.fullmatch(name)
            if m:
                gens.setdefault(int(m.group(1)), set()).add(m.group(2))
        locked = [g for g, kinds in gens.items() if "lock" in kinds]
        if not locked:
            return None
        top = max(locked)
        got = folder.read(f"{top:012d}.lock")
        if got is None:  # taken over and cleaned up since the listing: list again
            continue
        text, written_at = got
        try:
            info = json.loads(text)
        except ValueError:
            info = None
        free = "free" in gens[top] or folder.read(f"{top:012d}.free") is not None
        return _State(top, free, info, written_at)
    raise LockedError("the lock changed hands five times while being read; try again")


def _owner_alive(host: str, pid: int) -> bool:
    if host != socket.gethostname():
        return True  # cannot tell from here: trust it until it is stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(lake: Lake, key: str) -> dict | None:
    """Who holds the lock on ``key`` (owner, host, pid, run_date, acquired_at), None if free."""
    state = _state(_folder(lake, key))
    if state is None or state.free:
        return None
    return state.info or {"owner": None, "acquired_at": None}


def acquire(lake: Lake, key: str, run_date: str, owner: str) -> None:
    folder = _folder(lake, key)
    state = _state(folder)
    now = time.time()
    stale_after = timedelta(minutes=lake.settings.ops.lock_stale_minutes).total_seconds()
    if state is not None and not state.free:
        info = state.info
        if info is None:
            if now - state.written_at < stale_after:
                raise LockedError(f"{key}: another run is taking the lock at this moment")
        elif _owner_alive(info["host"], info["pid"]) and now - info["acquired_ts"] < stale_after:
            since = datetime.fromtimestamp(info["acquired_ts"], UTC)
            raise LockedError(
                f"{key} is already running (for {info['run_date']}, pid {info['pid']} on "
                f"{info['host']} since {since:%Y-%m-%d %H:%M:%S} UTC); refusing to run it "
                f"twice. If that run died, `dmp unlock {key}` or wait until the lock is stale "
                f"({lake.settings.ops.lock_stale_minutes} minutes)."
            )
    generation = (state.generation if state else 0) + 1
    me = {
        "key": key,
        "run_date": run_date,
        "owner": owner,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "acquired_ts": now,
        "acquired_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
    }
    mine = f"{generation:012d}.lock"
    if not folder.create(mine, json.dumps(me)):
        raise LockedError(f"{key}: another run took the lock at the same moment")
    # a number can be free again only once a higher one exists: then this run acted on an old
    # state (it read the lock before others took and cleaned it) and has lost
    names = [(int(m.group(1)), n) for n in folder.names() if (m := _NAME.fullmatch(n))]
    if any(g > generation for g, n in names if n.endswith(".lock")):
        folder.delete(mine)
        raise LockedError(f"{key}: another run took the lock at the same moment")
    for g, name in names:  # the generations before this one are history
        if g < generation:
            folder.delete(name)


def release(lake: Lake, key: str, owner: str | None = None) -> int | None:
    """Let the lock go; ``owner`` None lets go whoever holds it and says how many locks that was
    (for `dmp unlock`). A run only lets go of its own generation, never of one taken over."""
    folder = _folder(lake, key)
    state = _state(folder)
    held = state is not None and not state.free
    if held and (owner is None or (state.info or {}).get("owner") == owner):
        folder.create(f"{state.generation:012d}.free", json.dumps({"released_at": time.time()}))
        return 1 if owner is None else None
    return 0 if owner is None else None


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"


ERASE = "erase"


def _waiting(lake: Lake, what: str, until_free, say) -> None:
    """Poll until ``until_free()`` is None, saying once what is waited for; LockedError after
    ``ops.lock_wait_minutes``."""
    ops = lake.settings.ops
    deadline = time.monotonic() + ops.lock_wait_minutes * 60
    told = False
    while (busy := until_free()) is not None:
        if not told:
            say(f"[lock] {what} waits for {busy} to finish")
            told = True
        if time.monotonic() > deadline:
            raise LockedError(f"{what}: {busy} still running after {ops.lock_wait_minutes} min")
        time.sleep(ops.lock_poll_seconds)


def _describe(key: str, info: dict) -> str:
    return f"{key} (for {info.get('run_date')}, pid {info.get('pid')} on {info.get('host')})"


@contextmanager
def writer_lock(lake: Lake, job: str, run_date: str, say=say):
    """The job's own lock, held while no erasure runs on the lake."""
    owner = _owner()

    def erasure() -> str | None:
        info = holder(lake, ERASE)
        return None if info is None else _describe(ERASE, info)

    while True:
        _waiting(lake, job, erasure, say)
        acquire(lake, job, run_date, owner)
        if erasure() is None:
            break
        release(lake, job, owner)  # an erasure began meanwhile: it goes first
    try:
        yield
    finally:
        release(lake, job, owner)


@contextmanager
def erase_lock(lake: Lake, run_date: str, writers: list[str], say=say):
    """The erasure's lock, then a wait until none of ``writers`` (the jobs) runs."""
    owner = _owner()
    acquire(lake, ERASE, run_date, owner)
    try:

        def running() -> str | None:
            for job in writers:
                info = holder(lake, job)
                if info is not None:
                    return _describe(job, info)
            return None

        _waiting(lake, "erasure", running, say)
        yield
    finally:
        release(lake, ERASE, owner)
