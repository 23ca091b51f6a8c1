"""The HTTP floor: a Starlette route that reads the body and answers 201 with nothing else.

Served exactly like `fleetlog serve` (uvicorn, one worker, uvloop, httptools, no access log),
so `fleetlog / bare` is the cost of fleetlog's own work per request.

    python -m bench.bare --port 8081
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def accept(request: Request) -> Response:
    await request.body()
    return Response(b"", status_code=201)


app = Starlette(routes=[Route("/{path:path}", accept, methods=["GET", "POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
