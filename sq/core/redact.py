"""Masking the secrets that notification URLs carry, wherever such a URL is shown.

An apprise URL holds its credentials in places a plain URL does not: `tgram://BOTTOKEN/CHAT`
(the host is the bot token), `discord://ID/TOKEN`, `slack://T1/B2/XYZ` (path segments),
`mailto://user:password@example.com` (userinfo), `json://host/hook?token=…` (query). There is no
way to tell a token from a name in general, so `mask_url` keeps only what identifies the
channel without being secret — the scheme and a host that is a DNS name or an IP address (with
its port) — and replaces the userinfo, every path segment and every query value with `***`.

This is the one place sq masks such URLs: `sq config check`, the journal's start record (argv),
the run registry, warnings about a failing channel and the alerts' own log lines all go through it.
"""

from __future__ import annotations

import re
from typing import Iterable

MASK = "***"
_HOSTLIKE = re.compile(r"^(localhost|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)(:\d+)?$")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def mask_url(url: str) -> str:
    """`url` with its userinfo, path segments and query values replaced by `***`; the host kept
    only when it is a host name or an address (`tgram://***`, `json://127.0.0.1:9/***/***`)."""
    text = str(url)
    if "://" not in text:
        return MASK
    scheme, rest = text.split("://", 1)
    rest, hash_, fragment = rest.partition("#")  # slack://…/#channel: apprise reads it as a fragment
    rest, _, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    out = f"{scheme}://"
    if at:
        out += f"{MASK}@"
    out += host if _HOSTLIKE.match(host) else (MASK if host else "")
    if slash:
        out += "/" + "/".join(MASK if seg else "" for seg in path.split("/"))
    if query:
        out += "?" + "&".join(f"{kv.split('=', 1)[0]}={MASK}" if "=" in kv else MASK for kv in query.split("&"))
    if hash_:
        out += f"#{MASK}"
    return out


def mask_text(text: str) -> str:
    """`text` with every URL in it masked (`mask_url`): for argv, error messages and log lines."""
    return _URL.sub(lambda m: mask_url(m.group(0)), str(text))


def mask_argv(argv: Iterable[str]) -> list[str]:
    """A command line as it may be stored or shown: every URL argument (`--alert URL`,
    `--alert=URL`) masked."""
    return [mask_text(a) if "://" in str(a) else str(a) for a in argv]


def secret_parts(url: str) -> list[str]:
    """The pieces of `url` that `mask_url` hides (userinfo, non-host host, path segments, query
    values), longest first: `scrub` removes them from text that may quote them in another form."""
    text = str(url)
    if "://" not in text:
        return [text] if text else []
    _, rest = text.split("://", 1)
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    parts = [p for p in userinfo.split(":") if p] if at else []
    if host and not _HOSTLIKE.match(host):
        parts.append(host)
    parts += [seg for seg in path.split("/") if seg]
    parts += [kv.split("=", 1)[1] for kv in query.split("&") if "=" in kv and kv.split("=", 1)[1]]
    parts += [fragment] if fragment else []
    return sorted({p for p in parts if len(p) >= 3}, key=len, reverse=True)


def scrub(text: str, urls: Iterable[str]) -> str:
    """`text` (an exception, a library's message) with URLs masked and every secret piece of
    `urls` replaced by `***`, however it was quoted."""
    out = mask_text(text)
    for url in urls:
        for part in secret_parts(url):
            out = out.replace(part, MASK)
    return out
