"""Checking raw files before their lines are read: a truncated or corrupt gzip is found here,
per file, on the executors (zlib in C; Python touches each file once, never each line)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame

FILE_CHECK_SCHEMA = "source_file string, bytes long, newlines long, file_error string"


def check_parquet(content: bytes) -> tuple[int, str | None]:
    """(rows, error or None) of a Parquet file, from its footer."""
    try:
        return pq.ParquetFile(pa.BufferReader(content)).metadata.num_rows, None
    except (pa.ArrowException, OSError) as exc:
        return 0, f"corrupt_parquet: {exc}"


def check_file(name: str, content: bytes) -> tuple[int, str | None]:
    """(line count, error or None) of one raw file; gzip is verified to its end (CRC and
    length), Parquet by its footer (a row is a line), other files are counted as they are."""
    if name.endswith(".parquet"):
        return check_parquet(content)
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
