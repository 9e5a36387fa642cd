"""Checking raw files before their lines are read: a truncated or corrupt gzip is found here,
per file, on the executors (zlib in C; Python touches each file once, never each line)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame

FILE_CHECK_SCHEMA = "source_file string, bytes long, newlines long, file_error string"


def check_file(name: str, content: bytes) -> tuple[int, str | None]:
    """(newline count, error or None) of one raw file; gzip is verified to its end (CRC and
    length), other files are counted as they are."""
    if not name.endswith(".gz"):
        return content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0), None
    newlines, last = 0, b"\n"
    data = content
    try:
        while data:  # gzip files may hold several members one after the other
            d = zlib.decompressobj(wbits=31)
            for start in range(0, len(data), 1 << 20):
                out = d.decompress(data[start : start + (1 << 20)])
                if out:
                    newlines += out.count(b"\n")
                    last = out[-1:]
                if d.eof:
                    break
            if not d.eof:
                return newlines, "truncated_gzip"
            out = d.flush()
            newlines += out.count(b"\n")
            last = out[-1:] or last
            data = d.unused_data
    except zlib.error as exc:
        return newlines, f"corrupt_gzip: {exc}"
    return newlines + (0 if last == b"\n" else 1), None


def _check_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        paths = batch.column("path").to_pylist()
        contents = batch.column("content")
        rows = {"source_file": [], "bytes": [], "newlines": [], "file_error": []}
        for i, path in enumerate(paths):
            content = contents[i].as_py() or b""
            lines, error = check_file(path, content)
            rows["source_file"].append(path)
            rows["bytes"].append(len(content))
            rows["newlines"].append(lines)
            rows["file_error"].append(error)
        yield pa.RecordBatch.from_pydict(rows)


def check_files(binary_files: DataFrame) -> DataFrame:
    """binaryFile rows (path, content, ...) -> (source_file, bytes, newlines, file_error)."""
    return binary_files.select("path", "content").mapInArrow(_check_batches, FILE_CHECK_SCHEMA)
