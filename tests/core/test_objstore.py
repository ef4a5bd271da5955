"""sq.core.objstore: what is a URI, how one is shown (secrets masked) and extended, and which
inputs are refused before any request."""

from __future__ import annotations

import pytest

from sq.core import objstore
from sq.core.exits import UsageError


@pytest.mark.parametrize("text,uri", [("s3://b/k", True), ("gs://b", True), ("data/x.parquet", False), ("/abs/x", False),
                                      ("-", False), ("C:\\data", False), ("venue=sim/date=2024-01-01", False)])
def test_is_uri(text, uri):
    assert objstore.is_uri(text) is uri


def test_display_masks_credentials_but_keeps_the_location():
    shown = objstore.display("s3://AKIA:supersecret@bkt/data/x.parquet?endpoint_override=127.0.0.1:9000&secret_key=abc123&scheme=http")
    assert "supersecret" not in shown and "abc123" not in shown
    assert shown.startswith("s3://***@bkt/data/x.parquet?endpoint_override=127.0.0.1:9000&secret_key=***&scheme=http")


def test_join_keeps_the_query_and_encodes_percent_signs_of_keys():
    base = "s3://bkt/data?endpoint_override=h:1&scheme=http"
    assert objstore.join(base, "venue=sim/symbol=SIM%3ADEMO", "part-1.parquet") == \
        "s3://bkt/data/venue=sim/symbol=SIM%253ADEMO/part-1.parquet?endpoint_override=h:1&scheme=http"


def test_join_round_trips_through_pyarrow():
    import pyarrow.fs as pafs

    uri = objstore.join("s3://bkt/data?endpoint_override=127.0.0.1:1&scheme=http&region=us-east-1", "symbol=SIM%3ADEMO/x.parquet")
    _, path = pafs.FileSystem.from_uri(uri)
    assert path == "bkt/data/symbol=SIM%3ADEMO/x.parquet"


@pytest.mark.parametrize("uri,words", [("ftp://host/x", "unknown URI scheme"), ("s3://", "no bucket"), ("s3:///key", "no bucket")])
def test_refused_before_any_request(uri, words):
    with pytest.raises(UsageError, match=words):
        objstore.filesystem(uri)


@pytest.mark.parametrize("uri,words", [("s3://bucket/x?nonsense_option=1", "Unexpected query parameter in S3 URI: 'nonsense_option'"),
                                       ("gs://bucket/x?foo=bar", "Unexpected query parameter in GCS URI: 'foo'")])
def test_an_option_pyarrow_refuses_is_a_usage_error_naming_it(uri, words):
    """pyarrow's own refusal of a URI (ArrowInvalid) comes out as exit 2 with its first line."""
    from sq.core.exits import ExitStatus

    with pytest.raises(UsageError) as e:
        objstore.filesystem(uri)
    assert words in e.value.message and e.value.status == ExitStatus.USAGE
