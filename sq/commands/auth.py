"""`sq auth zerodha|binance|status`: log in / store and verify keys, or show every venue's state."""


from typing import Annotated, Optional

import typer

from sq.commands._options import JsonOption, complete_files, env_of

SUMMARY = "Log in to a venue, or show the stored credentials."
TARGETS = ("zerodha", "binance", "status")


def complete_targets(incomplete: str) -> list[str]:
    return [t for t in TARGETS if t.startswith(incomplete)]


HELP = """Log in to a venue and store its credentials (files 0600), or show what is stored.

Zerodha logs in with user id + password + TOTP when they are configured (ZKITE_* variables,
.env or the config), or through the official redirect flow with --manual: it prints the login URL,
then on a terminal asks for the redirect URL; otherwise it says how long it waits
(SQ_KITE_REDIRECT_TIMEOUT, 300 s) for the browser's redirect to 127.0.0.1:SQ_KITE_REDIRECT_PORT
(5000) or a line on stdin holding the request token or redirect URL. --request-token TOKEN
exchanges a token you already have. A token Kite refuses exits 77 with one line. Binance stores and
verifies an API key and secret (BINANCE_API_KEY / BINANCE_API_SECRET or a prompt on a terminal).
Secrets are never printed: `status` shows masked keys."""

EPILOG = """Examples:

  sq auth zerodha

  sq auth zerodha --manual

  sq auth zerodha --request-token 9wRrJYXvZ1pT   # the token from the redirect URL

  echo "$REDIRECT_URL" | sq auth zerodha --manual

  sq auth binance --testnet

  sq auth status --json
"""


def auth(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="zerodha, binance, or status.", metavar="zerodha|binance|status", autocompletion=complete_targets)],
    manual: Annotated[bool, typer.Option("--manual", help="Zerodha: the browser redirect flow instead of TOTP auto-login.")] = False,
    testnet: Annotated[bool, typer.Option("--testnet", help="Binance: use the spot/futures testnets.")] = False,
    ed25519_key: Annotated[Optional[str], typer.Option("--ed25519-key", help="Binance: sign with this Ed25519 private key file.", show_default=False, autocompletion=complete_files)] = None,
    request_token: Annotated[Optional[str], typer.Option("--request-token", help="Zerodha: the request_token from the login redirect (or the whole redirect URL); exchanged at once, no waiting.", show_default=False)] = None,
    json_out: JsonOption = False,
) -> None:
    from sq.runs.auth import run_auth

    run_auth(env_of(ctx), target, manual=manual, testnet=testnet, ed25519_key=ed25519_key, json_out=json_out, request_token=request_token)


def register(app: typer.Typer) -> None:
    app.command(name="auth", help=HELP, epilog=EPILOG, short_help=SUMMARY)(auth)
