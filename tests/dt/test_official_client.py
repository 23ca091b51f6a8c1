"""The official `disruptive` client, unpatched, against a real fleetlog process: service account
authentication, devices with filters, emulated devices, publishing every event type, history,
the live stream (within one second), labels, transfers, service accounts."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import disruptive as dt
import httpx
import pytest

from tests.e2e.process import ServerProcess

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class Fleetlog:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.url = server.url
        self.op = {**server.operator, "X-Fleetlog-Tenant": "acme"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, self.url + path, headers=self.op, timeout=10, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def service_account(self, project: str, roles: list[str]) -> dt.authentication.ServiceAccountAuth:
        made = self.call("POST", f"/v2/projects/{project}/serviceaccounts", json={"roles": roles})
        account = made["name"].split("/")[-1]
        key = self.call("POST", f"/v2/projects/{project}/serviceaccounts/{account}/keys")
        auth = dt.Auth.service_account(key_id=key["key"]["id"], secret=key["secret"], email=made["email"])
        auth.token_endpoint = self.url + "/oauth2/token"
        return auth


@pytest.fixture(scope="module")
def fleetlog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleetlog]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("dt-client"))).start()
    try:
        here = Fleetlog(server)
        here.call("POST", "/v1/tenants", json={"id": "acme"})
        for project in ("plant", "office"):
            here.call("POST", "/v1/tenants/acme/projects", json={"id": project})
        saved = (dt.base_url, dt.emulator_base_url, dt.default_auth)
        dt.base_url, dt.emulator_base_url = server.url + "/v2", server.url + "/emulator/v2"
        dt.default_auth = here.service_account("plant", ["roles/organization.admin"])
        yield here
        dt.base_url, dt.emulator_base_url, dt.default_auth = saved
    finally:
        server.stop()
        if hasattr(sys, "tracebacklimit"):  # the client sets it to 0 when it gives up on a stream
            del sys.tracebacklimit


def test_authenticates_and_reads_projects_and_devices(fleetlog: Fleetlog) -> None:
    project = dt.Project.get_project("plant")
    assert (project.project_id, project.organization_id) == ("plant", "acme")
    assert sorted(p.project_id for p in dt.Project.list_projects(organization_id="acme")) == ["office", "plant"]
    made = dt.Emulator.create_device("office", dt.Device.MOTION)
    everywhere = dt.Device.list_devices("-", organization_id="acme", project_ids=["office"])
    assert [d.device_id for d in everywhere] == [made.device_id]
    dt.Emulator.delete_device(made.device_id, "office")
    assert dt.Device.list_devices("office") == []


def test_a_wrong_secret_or_project_is_refused(fleetlog: Fleetlog) -> None:
    good = dt.default_auth
    wrong = dt.Auth.service_account(key_id=good.key_id, secret="not-the-secret-at-all", email=good.email)
    wrong.token_endpoint = good.token_endpoint
    with pytest.raises(dt.errors.Unauthorized):
        dt.Device.list_devices("plant", auth=wrong)
    narrow = fleetlog.service_account("plant", ["roles/project.user"])
    with pytest.raises(dt.errors.Forbidden):
        dt.Device.list_devices("office", auth=narrow)


def test_emulated_devices_listed_with_filters_and_fetched(fleetlog: Fleetlog) -> None:
    made = dt.Emulator.create_device("plant", dt.Device.TEMPERATURE, display_name="Freezer", labels={"room": "cold"})
    other = dt.Emulator.create_device("plant", dt.Device.HUMIDITY, display_name="Hall", labels={})
    assert made.is_emulated and made.display_name == "Freezer" and made.device_type == "temperature"
    assert dt.Device.get_device(made.device_id, "plant").labels == {"room": "cold", "name": "Freezer"}
    assert dt.Device.get_device(made.device_id).project_id == "plant"  # project "-"
    listed = {d.device_id for d in dt.Device.list_devices("plant")}
    assert {made.device_id, other.device_id} <= listed
    assert [d.device_id for d in dt.Device.list_devices("plant", label_filters={"room": "cold"})] == [made.device_id]
    assert [d.device_id for d in dt.Device.list_devices("plant", label_filters={"room": ""})] == [made.device_id]
    typed = dt.Device.list_devices("plant", device_types=[dt.Device.HUMIDITY], device_ids=[other.device_id])
    assert [d.device_id for d in typed] == [other.device_id]
    assert [d.device_id for d in dt.Device.list_devices("plant", query="Freez")] == [made.device_id]
    ordered = dt.Device.list_devices("plant", device_ids=[made.device_id, other.device_id], order_by="-labels.name")
    assert [d.display_name for d in ordered] == ["Hall", "Freezer"]
    dt.Emulator.delete_device(other.device_id, "plant")
    with pytest.raises(dt.errors.NotFound):
        dt.Device.get_device(other.device_id, "plant")


EVERY_EVENT: list[tuple[str, Any]] = [
    ("temperature", dt.events.Touch()),
    ("temperature", dt.events.Temperature(celsius=21.5)),
    ("temperature", dt.events.ProbeWireStatus(state="FOUR_WIRE")),
    ("proximity", dt.events.ObjectPresent(state="PRESENT")),
    ("humidity", dt.events.Humidity(celsius=22.5, relative_humidity=40)),
    ("proximityCounter", dt.events.ObjectPresentCount(total=12)),
    ("touchCounter", dt.events.TouchCount(total=7)),
    ("waterDetector", dt.events.WaterPresent(state="NOT_PRESENT")),
    ("co2", dt.events.Co2(ppm=612)),
    ("co2", dt.events.Pressure(pascal=98000)),
    ("motion", dt.events.Motion(state="MOTION_DETECTED")),
    ("deskOccupancy", dt.events.DeskOccupancy(state="OCCUPIED", remarks=["INCOMPLETE_DATA"])),
    ("contact", dt.events.Contact(state="CLOSED")),
    ("touch", dt.events.BatteryStatus(percentage=55)),
    (
        "touch",
        dt.events.NetworkStatus(
            signal_strength=60,
            rssi=-75,
            transmission_mode="LOW_POWER_STANDARD_MODE",
            cloud_connectors=[dt.events.NetworkStatusCloudConnector(device_id="ccon1", signal_strength=60, rssi=-75)],
        ),
    ),
    ("touch", dt.events.ConnectionStatus(connection="SDS", available=["SDS"])),
    ("ccon", dt.events.ConnectionStatus(connection="ETHERNET", available=["ETHERNET", "CELLULAR"])),
    ("ccon", dt.events.EthernetStatus(mac_address="f0:b5:b7:00:0a:08", ip_address="10.0.0.1")),
    ("ccon", dt.events.CellularStatus(signal_strength=80)),
]


def test_every_event_type_published_and_read_back_from_history(fleetlog: Fleetlog) -> None:
    devices: dict[str, str] = {}
    for kind, data in EVERY_EVENT:
        if kind not in devices:
            devices[kind] = dt.Emulator.create_device("plant", kind).device_id
        dt.Emulator.publish_event(devices[kind], "plant", data)
        history = dt.EventHistory.list_events(devices[kind], "plant", event_types=[data.event_type])
        assert history, data.event_type
        newest = history[0]
        assert newest.event_type == data.event_type and newest.device_id == devices[kind]
        assert type(newest.data) is type(data)
    temperature = dt.EventHistory.list_events(devices["temperature"], "plant", event_types=["temperature"])[0]
    assert temperature.data.celsius == 21.5 and temperature.data.samples[0].celsius == 21.5
    network = dt.EventHistory.list_events(devices["touch"], "plant", event_types=["networkStatus"])[-1]
    assert network.data.cloud_connectors[0].rssi == -75
    with pytest.raises(dt.errors.BadRequest):
        dt.Emulator.publish_event(devices["touch"], "plant", dt.events.Co2(ppm=1))
    reported = dt.Device.get_device(devices["co2"], "plant").reported
    assert reported is not None and reported.co2 is not None and reported.co2.ppm == 612


def test_labels_are_set_and_removed_and_each_change_is_an_event(fleetlog: Fleetlog) -> None:
    device = dt.Emulator.create_device("plant", dt.Device.TOUCH).device_id
    assert dt.Device.set_label(device, "plant", "room", "99") == []
    assert dt.Device.batch_update_labels([device], "plant", set_labels={"room": "100", "x": "1"}) == []
    assert dt.Device.remove_label(device, "plant", "x") == []
    assert dt.Device.get_device(device, "plant").labels == {"room": "100"}
    changes = dt.EventHistory.list_events(device, "plant", event_types=["labelsChanged"])
    assert [(c.data.added, c.data.modified, c.data.removed) for c in changes] == [
        ({}, {}, ["x"]),
        ({"x": "1"}, {"room": "100"}, []),
        ({"room": "99"}, {}, []),
    ]
    errors = dt.Device.set_label("missing0000000000000000", "plant", "a", "b")
    assert [(e.device_id, e.status_code) for e in errors] == [("missing0000000000000000", "NOT_FOUND")]


def test_devices_are_transferred(fleetlog: Fleetlog) -> None:
    device = dt.Emulator.create_device("plant", dt.Device.CONTACT).device_id
    assert dt.Device.transfer_devices([device], "plant", "office") == []
    assert dt.Device.get_device(device).project_id == "office"


def test_service_accounts_and_keys_through_the_client(fleetlog: Fleetlog) -> None:
    account = dt.ServiceAccount.create_service_account("plant", display_name="robot", basic_auth_enabled=True)
    key = dt.ServiceAccount.create_key(account.service_account_id, "plant")
    assert key.secret and account.basic_auth_enabled
    auth = dt.Auth.service_account(key_id=key.key_id, secret=key.secret, email=account.email)
    auth.token_endpoint = fleetlog.url + "/oauth2/token"
    assert dt.Project.get_project("plant", auth=auth).project_id == "plant"
    assert [k.key_id for k in dt.ServiceAccount.list_keys(account.service_account_id, "plant")] == [key.key_id]
    dt.ServiceAccount.delete_key(key.key_id, account.service_account_id, "plant")
    fresh = dt.Auth.service_account(key_id=key.key_id, secret=key.secret, email=account.email)
    fresh.token_endpoint = auth.token_endpoint
    with pytest.raises(dt.errors.Unauthorized):
        dt.Project.get_project("plant", auth=fresh)


def _collect(stream: Iterator[Any], out: queue.Queue[Any], stop: threading.Event) -> None:
    try:
        for event in stream:
            out.put((time.monotonic(), event))
            if stop.is_set():
                return
    except Exception as exc:  # handed to the test, never lost in the thread
        out.put((time.monotonic(), exc))


def test_published_events_arrive_through_the_stream_within_a_second(fleetlog: Fleetlog) -> None:
    device = dt.Emulator.create_device("plant", dt.Device.TOUCH, display_name="Button").device_id
    received: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    stream = dt.Stream.event_stream("plant", device_ids=[device], event_types=["touch", "batteryStatus"])
    reader = threading.Thread(target=_collect, args=(stream, received, stop), daemon=True)
    reader.start()
    try:
        # The stream is connected once a warm-up touch comes through.
        deadline = time.monotonic() + 15
        while True:
            dt.Emulator.publish_event(device, "plant", dt.events.Touch())
            try:
                received.get(timeout=0.5)
                break
            except queue.Empty:
                assert time.monotonic() < deadline, "the stream never delivered"
        while not received.empty():
            received.get()
        for percentage in (10, 20, 30):
            sent = time.monotonic()
            dt.Emulator.publish_event(device, "plant", dt.events.BatteryStatus(percentage=percentage))
            arrived, event = received.get(timeout=5)
            assert not isinstance(event, Exception), event
            assert event.event_type == "batteryStatus" and event.data.percentage == percentage
            assert event.device_id == device
            assert arrived - sent < 1.0
    finally:
        stop.set()
        dt.Emulator.publish_event(device, "plant", dt.events.Touch())  # lets the reader see the stop flag
        reader.join(10)


def test_the_service_account_also_reaches_data_connectors(fleetlog: Fleetlog) -> None:
    """The DT face lends its authenticator to the connectors face (`/v2/.../dataconnectors`)."""
    assert dt.DataConnector.list_data_connectors("office") == []
    narrow = fleetlog.service_account("plant", ["roles/project.user"])
    with pytest.raises(dt.errors.Forbidden):
        dt.DataConnector.list_data_connectors("office", auth=narrow)
