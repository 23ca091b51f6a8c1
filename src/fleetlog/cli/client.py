"""A small HTTP client for the native /v1 API, shared by the operator and events commands.

Where to connect: `--url`, else FLEETLOG_URL, else http://127.0.0.1:8080.
Which credential: `--token`, else FLEETLOG_TOKEN, else the operator token the server wrote to
<data dir>/admin-token on its first start (`--data-dir`, else FLEETLOG_DATA_DIR, else ./data).

API errors ({"error": {"code", "message", "field"?}}) are printed in red on stderr as
`error: <field>: <message>` and end the command with exit code 1.

httpx and rich are imported only when a command runs, so `fleetlog --help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    import httpx
    from rich.console import Console

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_DATA_DIR = Path("data")
TOKEN_FILE = "admin-token"  # the same name as fleetlog.bootstrap.ADMIN_TOKEN_FILE (not imported: heavy)
TIMEOUT_SECONDS = 30.0

# The options every command that talks to the server accepts.
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="FLEETLOG_URL", show_envvar=False, help=f"Server URL (env FLEETLOG_URL; default {DEFAULT_URL})"
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="FLEETLOG_TOKEN",
        show_envvar=False,
        help="API key (env FLEETLOG_TOKEN; default: the operator token in <data dir>/admin-token)",
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="FLEETLOG_DATA_DIR",
        show_envvar=False,
        help="Where the server keeps its data, for the operator token (env FLEETLOG_DATA_DIR; default ./data)",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON (for scripts)")]


def fail(message: str) -> NoReturn:
    """Print `error: message` in red on stderr and exit with code 1."""
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(1)


def resolve_token(token: str | None, data_dir: Path | None) -> str:
    if token:
        return token.strip()
    directory = data_dir if data_dir is not None else DEFAULT_DATA_DIR
    path = directory / TOKEN_FILE
    try:
        found = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        fail(
            f"no API key: pass --token, set FLEETLOG_TOKEN, or point --data-dir at the server's "
            f"data directory (no {path} found)"
        )
    except OSError as exc:
        fail(f"cannot read the operator token from {path}: {exc.strerror or exc}")
    if not found:
        fail(f"{path} is empty; pass --token or set FLEETLOG_TOKEN")
    return found


def api_error_message(status: int, body: bytes) -> str:
    """`<field>: <message>` from the native error shape; something sensible for anything else."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        field = err.get("field")
        return f"{field}: {err['message']}" if field else str(err["message"])
    text = body.decode("utf-8", "replace").strip()
    return f"HTTP {status}" + (f": {text[:500]}" if text else "")


class Client:
    """Calls the API; on any failure prints the reason and exits 1 (this is a CLI)."""

    def __init__(self, url: str, token: str) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "fleetlog-cli"},
            timeout=httpx.Timeout(TIMEOUT_SECONDS, connect=5.0),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        import httpx

        try:
            yield
        except httpx.ConnectError:
            fail(f"cannot reach fleetlog at {self.url} — is `fleetlog serve` running?")
        except httpx.TimeoutException:
            fail(f"fleetlog at {self.url} did not answer in time")
        except httpx.InvalidURL as exc:
            fail(f"invalid URL {self.url!r}: {exc}")
        except httpx.UnsupportedProtocol:
            fail(f"invalid URL {self.url!r}: use http:// or https://")
        except httpx.HTTPError as exc:
            fail(f"talking to fleetlog at {self.url} failed: {exc}")

    def request(self, method: str, path: str, *, params: Any = None, json_body: Any = None) -> Any:
        """The decoded JSON answer (None for 204); exits 1 on an API or transport error."""
        with self._transport_errors():
            response = self._http.request(method, path, params=params, json=json_body)
        if response.status_code >= 400:
            fail(api_error_message(response.status_code, response.content))
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            fail(f"fleetlog at {self.url} answered with something that is not JSON")

    def get(self, path: str, params: Any = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json_body=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json_body=body)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    @contextmanager
    def stream(self, path: str, params: Any = None) -> Iterator[httpx.Response]:
        """A streamed GET: the body is read by the caller, chunk by chunk. API errors exit 1
        before the caller sees the response; transport errors while reading exit 1 too."""
        with self._transport_errors(), self._http.stream("GET", path, params=params) as response:
            if response.status_code >= 400:
                response.read()
                fail(api_error_message(response.status_code, response.content))
            yield response


def connect(url: str | None, token: str | None, data_dir: Path | None) -> Client:
    return Client(url or DEFAULT_URL, resolve_token(token, data_dir))


def quote(segment: str) -> str:
    """One path segment, escaped."""
    from urllib.parse import quote as _quote

    return _quote(segment, safe="")


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def console(stderr: bool = False) -> Console:
    """A rich console. Piped output is not wrapped at 80 columns (it is read by tools)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty() and "COLUMNS" not in os.environ:
        width = 200
    return Console(stderr=stderr, width=width, highlight=False)


def parse_labels(raw: list[str] | None) -> dict[str, str]:
    """`key=value` options as a dict; exits 1 on a malformed one."""
    labels: dict[str, str] = {}
    for item in raw or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"label: must be key=value, got {item!r}")
        labels[key] = value
    return labels
