"""The MQTT acknowledgement journal: a redelivery gets the key of the original, nothing else does."""

from __future__ import annotations

from pathlib import Path

from fleetlog.adapters.transports.mqtt_journal import AckJournal


def journal(path: Path) -> AckJournal:
    j = AckJournal(path / "j.journal", window=100)
    j.open()
    return j


def test_a_redelivery_after_a_restart_reuses_the_key(tmp_path: Path) -> None:
    j = journal(tmp_path)
    keys = {mid: j.key_for(mid, "span/a/b/c/up", f"m{mid}".encode()) for mid in range(1, 11)}
    j.flush()
    again = journal(tmp_path)  # the process died; a new one reads the journal
    assert again.key_for(7, "span/a/b/c/up", b"m7") == keys[7]
    assert again.reused == 1


def test_keys_not_flushed_are_not_remembered(tmp_path: Path) -> None:
    j = journal(tmp_path)
    first = j.key_for(1, "t", b"x")
    j.flush()
    j.key_for(2, "t", b"y")  # submitted only after a flush; a crash before it loses nothing stored
    again = journal(tmp_path)
    assert again.key_for(1, "t", b"x") == first
    assert again.key_for(2, "t", b"y").startswith("mqtt:")
    assert again.reused == 1


def test_a_new_message_with_a_reused_packet_id_gets_a_new_key(tmp_path: Path) -> None:
    j = journal(tmp_path)
    old = j.key_for(5, "t", b"same payload")
    for mid in range(6, 300):  # the broker moved far past packet id 5
        j.key_for(mid, "t", b"other")
    assert j.key_for(5, "t", b"same payload") != old


def test_a_different_message_under_the_same_packet_id_gets_a_new_key(tmp_path: Path) -> None:
    j = journal(tmp_path)
    old = j.key_for(5, "t", b"one")
    j.key_for(6, "t", b"two")
    assert j.key_for(5, "t", b"not one") != old
    assert j.key_for(5, "other/topic", b"one") != old


def test_packet_ids_wrap(tmp_path: Path) -> None:
    j = journal(tmp_path)
    key = j.key_for(65535, "t", b"last")
    j.key_for(1, "t", b"first after the wrap")
    assert j.key_for(65535, "t", b"last") == key


def test_a_fresh_session_forgets_everything(tmp_path: Path) -> None:
    j = journal(tmp_path)
    key = j.key_for(3, "t", b"x")
    j.flush()
    j.new_session()
    assert j.key_for(3, "t", b"x") != key
    assert journal(tmp_path).key_for(3, "t", b"x") != key


def test_compaction_keeps_what_can_still_match(tmp_path: Path) -> None:
    j = journal(tmp_path)
    keys = [j.key_for(mid, "t", str(mid).encode()) for mid in range(1, 1001)]
    j.flush()
    j._compact()
    assert len((tmp_path / "j.journal").read_text().splitlines()) == 100
    again = journal(tmp_path)
    assert again.key_for(1000, "t", b"1000") == keys[-1]
    assert again.key_for(950, "t", b"950") == keys[949]
