"""A small HTTP client for the fleetlog API, and the options that say where and as whom to connect.

Where to connect: `--url`, else FLEETLOG_URL, else http://127.0.0.1:8080.
Which credential: `--token`, else FLEETLOG_TOKEN, else the operator token the server wrote to
<data dir>/admin-token on its first start (`--data-dir`, else FLEETLOG_DATA_DIR, else ./data).
A command gets the three options, last, with `@with_server` (see there).

API errors ({"error": {"code", "message", "field"?}}) are printed in red on stderr as
`error: <field>: <message>` and end the command with exit code 1.

httpx is imported only when a command connects, so `fleetlog --help` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleetlog.cli.common import fail, option_group

if TYPE_CHECKING:
    import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_DATA_DIR = Path("data")
TOKEN_FILE = "admin-token"  # the same name as fleetlog.bootstrap.ADMIN_TOKEN_FILE (not imported: heavy)
TIMEOUT_SECONDS = 30.0

# The options every command that talks to the server accepts (see `with_server`).
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

    def __init__(self, url: str, token: str, headers: Mapping[str, str] | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "fleetlog-cli", **(headers or {})},
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


@dataclass(frozen=True)
class Server:
    """Where and as whom to connect: the `--url`, `--token` and `--data-dir` of a command."""

    url: UrlOption = None
    token: TokenOption = None
    data_dir: DataDirOption = None

    def connect(self, headers: Mapping[str, str] | None = None) -> Client:
        """A client for the server (use it in a `with`); `headers` go with every request."""
        return Client(self.url or DEFAULT_URL, resolve_token(self.token, self.data_dir), headers)


def with_server(command: Callable[..., None]) -> Callable[..., None]:
    """For a command that talks to the server: its `server: Server` argument becomes the
    `--url`, `--token` and `--data-dir` options, after all the command's own."""
    return option_group(command, "server", Server, last=True)


def quote(segment: str) -> str:
    """One path segment, escaped."""
    from urllib.parse import quote as _quote

    return _quote(segment, safe="")


def tenant_path(tenant: str, *segments: str) -> str:
    """`/v1/tenants/{tenant}/{segment}/...`, each part escaped."""
    return "/v1/tenants/" + "/".join(quote(part) for part in (tenant, *segments))
