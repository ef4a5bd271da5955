"""Reading a user's file into a polars DataFrame: CSV (plain, gzip, zstd, bzip2 or a one-file zip)
or Parquet, told apart by their first bytes, never by the name.

polars parses CSV on every core into typed columns (decimal text to the correctly rounded
double, as `float()` does), which is what keeps `sq import` near a plain `pl.read_csv`. Anything
polars cannot read is a DataError (65) naming the file; a file that is not there is
NoInputError (66).
"""

from __future__ import annotations

import bz2
import gzip
import zipfile
from pathlib import Path
from typing import Mapping

import polars as pl

from sq.core.exits import DataError, NoInputError

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
ZIP_MAGIC = b"PK\x03\x04"
HEADER_BYTES = 1 << 16


def head_bytes(path: Path, n: int = 8) -> bytes:
    """The first `n` bytes of `path` (NoInputError when it cannot be opened)."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except FileNotFoundError:
        raise NoInputError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise NoInputError(f"{path} is a directory, not a file") from None
    except OSError as e:
        raise NoInputError(f"cannot read {path}: {e.strerror}") from None


def is_parquet(path: Path) -> bool:
    return head_bytes(path, 4) == PARQUET_MAGIC


def columns_of(path: Path) -> list[str]:
    """The column names of a Parquet file, or of a CSV file's header line (decompressed)."""
    if is_parquet(path):
        try:
            return list(pl.read_parquet_schema(path))
        except (pl.exceptions.PolarsError, OSError) as e:
            raise DataError(f"{path}: unreadable Parquet file: {_first_line(e)}") from None
    text = _first_text(path)
    line = text.splitlines()[0] if text.strip() else ""
    return [c.strip().strip('"') for c in line.split(",")] if line else []


def read_frame(path: Path, *, columns: list[str] | None = None, dtypes: Mapping[str, pl.DataType] | None = None) -> pl.DataFrame:
    """The file as a DataFrame: only `columns` (all when None), CSV columns parsed as `dtypes`."""
    if is_parquet(path):
        try:
            return pl.read_parquet(path, columns=columns)
        except (pl.exceptions.PolarsError, OSError) as e:
            raise DataError(f"{path}: unreadable Parquet file: {_first_line(e)}") from None
    source = _csv_source(path)
    try:
        return pl.read_csv(source, columns=columns, schema_overrides=dict(dtypes or {}), infer_schema_length=10_000)
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as e:
        raise DataError(f"{path}: not a readable CSV file: {_first_line(e)}") from None


def read_bytes(path: Path) -> bytes:
    """The whole file (for venue archive readers, which take bytes)."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise NoInputError(f"cannot read {path}: {e.strerror}") from None


def _csv_source(path: Path):
    """What `pl.read_csv` reads: the path (plain, gzip and zstd files: polars decompresses those
    itself) or the decompressed bytes (bzip2, the one CSV member of a zip)."""
    magic = head_bytes(path, 4)
    if magic.startswith(BZIP2_MAGIC):
        try:
            return bz2.decompress(path.read_bytes())
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: corrupt bzip2 data: {_first_line(e)}") from None
    if magic == ZIP_MAGIC:
        with _zip_member(path) as member:
            return member.read()
    return path


def _zip_member(path: Path):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path}: corrupt zip file: {_first_line(e)}") from None
    names = [i.filename for i in archive.infolist() if not i.is_dir()]
    if len(names) != 1:
        raise DataError(f"{path}: a zip file must hold exactly one CSV file; it holds {len(names)}")
    return archive.open(names[0])


def _first_text(path: Path) -> str:
    """The first bytes of the (decompressed) file as text, for its header line."""
    magic = head_bytes(path, 4)
    try:
        if magic.startswith(GZIP_MAGIC):
            with gzip.open(path, "rb") as f:
                raw = f.read(HEADER_BYTES)
        elif magic == ZSTD_MAGIC:
            import pyarrow as pa

            with pa.CompressedInputStream(pa.OSFile(str(path)), "zstd") as f:
                raw = f.read(HEADER_BYTES)
        elif magic.startswith(BZIP2_MAGIC):
            with bz2.open(path, "rb") as f:
                raw = f.read(HEADER_BYTES)
        elif magic == ZIP_MAGIC:
            with _zip_member(path) as f:
                raw = f.read(HEADER_BYTES)
        else:
            with open(path, "rb") as f:
                raw = f.read(HEADER_BYTES)
    except (OSError, EOFError, ValueError) as e:
        raise DataError(f"{path}: unreadable compressed file: {_first_line(e)}") from None
    return raw.decode("utf-8", errors="replace").lstrip("\ufeff")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__

