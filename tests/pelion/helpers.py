"""Shared helpers for the Pelion face tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import Fleet


def pelion(headers: dict[str, str]) -> dict[str, str]:
    """The same fleetlog key, presented the Pelion way (ak_ instead of fl_)."""
    token = headers["Authorization"].removeprefix("Bearer ")
    assert token.startswith("fl_")
    return {"Authorization": "Bearer ak_" + token[3:]}


def events(fleet: Fleet, params: str = "", headers: dict[str, str] | None = None) -> Any:
    response = fleet.client.get(f"/v3/device-events?{params}", headers=headers or pelion(fleet.reader))
    assert response.status_code == 200, response.text
    return response.json()


def walk(fleet: Fleet, params: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every item, page by page, the way clients page: `after` = the last id while has_more."""
    items: list[dict[str, Any]] = []
    after = ""
    while True:
        page = events(fleet, params + (f"&after={after}" if after else ""), headers)
        items += page["data"]
        if not page["has_more"]:
            return items
        assert page["data"], "has_more with an empty page would stop every client"
        after = page["data"][-1]["id"]


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["object"] == "error" and body["code"] == status
    assert len(body["request_id"]) == 32
    return body
