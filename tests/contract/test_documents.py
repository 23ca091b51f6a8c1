"""The DocumentStore contract."""

from __future__ import annotations

from typing import Any


async def test_put_get_list_delete(storage: Any) -> None:
    docs = storage.documents
    assert await docs.get("acme", "connector", "c1") is None
    await docs.put("acme", "connector", "c1", {"url": "http://x", "n": 1})
    await docs.put("acme", "connector", "c2", {"url": "http://y"})
    await docs.put("globex", "connector", "c1", {"url": "http://z"})
    await docs.put("acme", "campaign", "c1", [1, 2])
    assert await docs.get("acme", "connector", "c1") == {"url": "http://x", "n": 1}
    assert [i for _, i, _ in await docs.list("acme", "connector")] == ["c1", "c2"]
    assert [(t, i) for t, i, _ in await docs.list(None, "connector")] == [
        ("acme", "c1"),
        ("globex", "c1"),
        ("acme", "c2"),
    ]
    assert [i for _, i, _ in await docs.list("acme", "connector", after="c1")] == ["c2"]
    await docs.put("acme", "connector", "c1", {"url": "http://x2"})
    assert await docs.get("acme", "connector", "c1") == {"url": "http://x2"}
    assert await docs.delete("acme", "connector", "c1") is True
    assert await docs.delete("acme", "connector", "c1") is False
    assert await docs.get("globex", "connector", "c1") == {"url": "http://z"}


async def test_create_only_once(storage: Any) -> None:
    assert await storage.documents.create("acme", "k", "a", {"v": 1}) is True
    assert await storage.documents.create("acme", "k", "a", {"v": 2}) is False
    assert await storage.documents.get("acme", "k", "a") == {"v": 1}
