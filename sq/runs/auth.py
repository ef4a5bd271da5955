"""Behind `sq auth`: dispatch to the venue's auth module and render its summary.

Each real venue package has `auth.login(env, config, options: AuthOptions) -> dict` and
`auth.status(env, config) -> dict`; the dicts hold only printable, already-masked values.
"""

from __future__ import annotations

from dataclasses import dataclass

from sq.core.environment import Environment
from sq.core.exits import UsageError

@dataclass(frozen=True)
class AuthOptions:
    manual: bool = False
    testnet: bool = False
    ed25519_key: str | None = None
    request_token: str | None = None  # Zerodha: the redirect's request_token (or its URL), given by --request-token


def run_auth(env: Environment, target: str, *, manual: bool, testnet: bool, ed25519_key: str | None, json_out: bool,
             request_token: str | None = None) -> None:
    from sq.core.config import load_config
    from sq.venues.registry import ACCOUNT_VENUES, venue_module

    target = target.strip().lower()
    config = load_config(env)
    if target == "status":
        summary = credential_status(env, config)
    elif target in ACCOUNT_VENUES:
        module = venue_module(target, "auth")
        summary = {target: module.login(env, config, AuthOptions(manual, testnet, ed25519_key, request_token))}
    else:
        raise UsageError(f"sq auth takes {', '.join(ACCOUNT_VENUES)} or status; got {target!r}")
    _render(env, summary, json_out)


def credential_status(env: Environment, config=None) -> dict[str, dict]:
    """Every account venue's stored credentials (state, expiry), masked; no network."""
    from sq.core.config import load_config
    from sq.venues.registry import ACCOUNT_VENUES

    config = load_config(env) if config is None else config
    return {v: _status(env, config, v) for v in ACCOUNT_VENUES}


def _status(env: Environment, config, venue: str) -> dict:
    from sq.venues.registry import venue_module

    try:
        module = venue_module(venue, "auth")
    except UsageError as e:
        return {"state": "unavailable", "detail": e.message}
    return module.status(env, config)


def _render(env: Environment, summary: dict, json_out: bool) -> None:
    if json_out or not env.stdout_isatty:
        env.write_json(summary, indent=2)
        return
    from rich.table import Table

    table = Table("venue", "key", "value", title="sq auth")
    for venue, info in summary.items():
        for i, (k, v) in enumerate(sorted(info.items())):
            table.add_row(venue if i == 0 else "", k, str(v))
    env.console().print(table)
