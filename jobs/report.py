"""Run bookkeeping: every job reports rows read, written and dropped, and its time."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field


class _CurrentStderr(logging.Handler):
    """Writes each record to whatever ``sys.stderr`` is when it is emitted (a redirected
    stream, a test's capture), flushed at once: progress is read as it happens."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")
        sys.stderr.flush()


LOG = logging.getLogger("dmp")  # progress of every job; reconfigure it to send it elsewhere
if not LOG.handlers:
    LOG.addHandler(_CurrentStderr())
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


def say(message: str) -> None:
    LOG.info(message)


@dataclass
class JobReport:
    job: str
    run_date: str
    read: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    @contextmanager
    def step(self, what: str):
        """A long step: announced when it starts, timed when it ends."""
        t0 = time.time()
        say(f"[{self.job}] {what} ...")
        yield
        say(f"[{self.job}] {what} done in {time.time() - t0:.1f}s")

    def summary(self) -> str:
        def fmt(d: dict[str, int]) -> str:
            return ", ".join(f"{k}={v:,}" for k, v in d.items()) or "-"

        lines = [f"[{self.job}] {self.run_date} finished in {self.seconds:.1f}s"]
        lines.append(f"    read    {fmt(self.read)}")
        lines.append(f"    written {fmt(self.written)}")
        lines.append(f"    dropped {fmt(self.dropped)}")
        for key, value in self.facts.items():
            lines.append(f"    {key}: {value}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "job": self.job,
            "run_date": self.run_date,
            "read": self.read,
            "written": self.written,
            "dropped": self.dropped,
            "facts": {
                k: str(v) if not isinstance(v, int | float) else v for k, v in self.facts.items()
            },
            "seconds": round(self.seconds, 2),
        }


@contextmanager
def job_report(job: str, run_date: str):
    report = JobReport(job, run_date)
    t0 = time.time()
    say(f"[{job}] starting for {run_date}")
    yield report
    report.seconds = time.time() - t0
    say(report.summary())
