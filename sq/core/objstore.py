"""Object-store URIs (`s3://bucket/prefix`, `gs://bucket/prefix`) as inputs and outputs.

Through pyarrow's filesystems (`pyarrow.fs.FileSystem.from_uri`): a URI's query carries the
options pyarrow understands (`s3://bucket/key?endpoint_override=127.0.0.1:9000&scheme=http`,
`region=…`), and S3's endpoint and credentials otherwise come from the standard AWS environment
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, or the AWS config files).
A file is named by its full URI (scheme, bucket, key and the same query), so a worker on another
machine opens it with nothing else to know.

Errors are one line, with the secrets of the URI masked: an unknown scheme is a usage error (2);
a missing bucket or key on read exit 66, an unreachable endpoint on read exit 66 too (the input
cannot be read); a refused or missing credential exit 77; any failure to write exit 74.
"""

from __future__ import annotations

import fnmatch
import re
import urllib.parse
from typing import Any

from sq.core.exits import AuthError, IOFailure, NoInputError, UsageError
from sq.core.redact import MASK

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
SCHEMES = ("s3", "gs", "gcs")
_SECRET_KEYS = ("key", "secret", "token", "password", "credential")


def is_uri(text: Any) -> bool:
    """Whether `text` names an object-store location (`scheme://…`) rather than a local path."""
    return isinstance(text, str) and _SCHEME.match(text) is not None


def display(uri: str) -> str:
    """`uri` as it may be printed: userinfo and secret query values (`secret_key=…`) masked."""
    scheme_end = uri.index("://") + 3
    rest, q, query = uri[scheme_end:].partition("?")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = f"{MASK}@{authority.rpartition('@')[2]}"
    out = uri[:scheme_end] + authority + slash + path
    if q:
        kept = []
        for kv in query.split("&"):
            k, eq, v = kv.partition("=")
            kept.append(f"{k}={MASK}" if eq and any(s in k.lower() for s in _SECRET_KEYS) else kv)
        out += "?" + "&".join(kept)
    return out


def _split(uri: str) -> tuple[str, str, str]:
    """(scheme, bucket/key path, query) of a URI."""
    m = _SCHEME.match(uri)
    if m is None:
        raise UsageError(f"{uri!r} is not an object-store URI")
    scheme = m.group(1).lower()
    rest, _, query = uri[m.end():].partition("?")
    return scheme, rest, query


def _quote(key: str) -> str:
    """A key as it goes into a URI: pyarrow decodes %XX in a URI's path, so a `%` of the key (the
    dataset's `symbol=SIM%3ADEMO`) is encoded once more."""
    return urllib.parse.quote(key, safe="/=:,@+-_.~!$&'()*;")


def join(base: str, *names: str) -> str:
    """`base` (a directory URI, with its query) with the keys `names` appended to its path."""
    scheme, path, query = _split(base)
    tail = "/".join(_quote(n.strip("/")) for n in names if n)
    path = f"{path.rstrip('/')}/{tail}" if tail else path
    return f"{scheme}://{path}" + (f"?{query}" if query else "")


def filesystem(uri: str):
    """(pyarrow FileSystem, path inside it) for `uri`; an unknown scheme is a usage error."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    scheme, path, _ = _split(uri)
    if scheme not in SCHEMES:
        raise UsageError(f"{display(uri)}: unknown URI scheme {scheme}:// (sq reads and writes local paths, s3:// and gs://)")
    if not path.split("/", 1)[0]:
        raise UsageError(f"{display(uri)}: no bucket in the URI (s3://BUCKET/prefix)")
    try:
        fs, inner = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as e:
        raise UsageError(f"{display(uri)}: {_first_line(e, uri)}") from None
    except OSError as e:
        raise fail(e, uri) from None
    return fs, inner


def _first_line(e: BaseException, uri: str) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    _, _, query = uri.partition("?")
    for kv in query.split("&"):
        k, eq, v = kv.partition("=")
        if eq and v and any(s in k.lower() for s in _SECRET_KEYS):
            text = text.replace(v, MASK).replace(urllib.parse.unquote(v), MASK)
    return text


_AUTH = ("ACCESS_DENIED", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "credentials", "Forbidden", "403",
         "UNRECOGNIZED_CLIENT", "ExpiredToken", "InvalidToken", "Unauthorized", "401")
_MISSING = ("NoSuchBucket", "bucket does not exist", "NO_SUCH_BUCKET", "Bucket '", "NoSuchKey", "not found", "does not exist", "404")
_NETWORK = ("NETWORK_CONNECTION", "curlCode", "Couldn't connect", "Could not resolve", "Connection refused", "timed out", "Timeout",
            "Failed to connect", "Couldn't resolve")


def fail(e: BaseException, uri: str, *, writing: bool = False) -> Exception:
    """The SqError a pyarrow filesystem failure on `uri` means to the user (see the module doc)."""
    text = _first_line(e, uri)
    where = display(uri)
    if writing:
        reason = ("credentials refused or missing" if any(s in text for s in _AUTH) else
                  "the bucket does not exist" if any(s in text for s in _MISSING[:4]) else
                  "the object store does not answer" if any(s in text for s in _NETWORK) else "write failed")
        return IOFailure(f"{where}: {reason} ({text})")
    if any(s in text for s in _NETWORK):
        return NoInputError(f"{where}: the object store does not answer ({text})")
    if any(s in text for s in _MISSING):
        return NoInputError(f"{where}: not found ({text})")
    if any(s in text for s in _AUTH):
        return AuthError(f"{where}: credentials refused or missing ({text}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the "
                         "store's own)")
    return NoInputError(f"cannot read {where}: {text}")


def open_file(uri: str):
    """A random-access pyarrow file of the object at `uri` (Parquet footers and Arrow files read
    only the ranges they need)."""
    fs, path = filesystem(uri)
    try:
        return fs.open_input_file(path)
    except OSError as e:
        raise fail(e, uri) from None


def list_files(uri: str, suffixes: tuple[str, ...], skip_names: tuple[str, ...] = ()) -> list[str]:
    """Every object under `uri` (a file, a prefix, or a glob over the keys, `*`/`?`/`[`) whose name
    ends in one of `suffixes` and does not start with a dot, as URIs in key order; a missing one
    is exit 66."""
    import pyarrow.fs as pafs

    scheme, rest, query = _split(uri)
    pattern = None
    if any(ch in rest for ch in "*?["):  # the glob applies to keys under the prefix before its first wildcard
        first = min(rest.index(ch) for ch in "*?[" if ch in rest)
        base = rest[:first].rpartition("/")[0]
        pattern = rest
        root = f"{scheme}://{base}" + (f"?{query}" if query else "")
    else:
        root = uri
    fs, path = filesystem(root)
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File and pattern is None:
            return [uri]
        if info.type == pafs.FileType.NotFound and pattern is None:
            raise NoInputError(f"input not found: {display(uri)}")
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    except OSError as e:
        raise fail(e, uri) from None
    bucket_prefix = rest.split("/", 1)[0]
    out = []
    for i in infos:
        if i.type != pafs.FileType.File or i.base_name.startswith(".") or i.base_name in skip_names:
            continue
        if not i.path.endswith(suffixes):
            continue
        if any(seg.startswith(".") for seg in i.path.split("/")):
            continue
        if pattern is not None and not fnmatch.fnmatchcase(i.path, pattern):
            continue
        key = i.path if i.path.startswith(bucket_prefix) else f"{bucket_prefix}/{i.path}"
        out.append(f"{scheme}://{_quote(key)}" + (f"?{query}" if query else ""))
    if not out:
        raise NoInputError(f"no Parquet or Arrow files found in {display(uri)}")
    return sorted(out)


def upload(local_path: str, uri: str) -> None:
    """Copy a finished local file to `uri` as one object (a PUT, or a multipart upload completed
    only at close): a reader never sees part of it."""
    fs, path = filesystem(uri)
    try:
        with open(local_path, "rb") as src, fs.open_output_stream(path) as dst:
            while True:
                chunk = src.read(8 << 20)
                if not chunk:
                    break
                dst.write(chunk)
    except OSError as e:
        raise fail(e, uri, writing=True) from None


def check_writable(uri: str) -> None:
    """Fail fast (exit 74, or 2 for a bad URI) when `uri`'s bucket cannot be reached or does not
    exist, before a recording starts."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    bucket = path.split("/", 1)[0]
    try:
        info = fs.get_file_info(bucket)
    except OSError as e:
        raise fail(e, uri, writing=True) from None
    if info.type == pafs.FileType.NotFound:
        raise IOFailure(f"{display(uri)}: the bucket {bucket} does not exist")
