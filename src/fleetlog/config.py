"""Configuration: defaults, overridden by FLEETLOG_* environment variables, then by CLI flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path


class ConfigError(ValueError):
    """A setting with a value fleetlog cannot use; the message names the setting."""


@dataclass
class Config:
    data_dir: Path = field(default_factory=lambda: Path("data"))
    host: str = "127.0.0.1"
    port: int = 8080
    # SQLite durability: NORMAL survives a process crash, FULL also a power cut.
    sqlite_synchronous: str = "NORMAL"
    # Operator credential; generated on first start (and written to <data_dir>/admin-token) if unset.
    admin_token: str | None = None
    # Request size limits (bytes); larger bodies get 413.
    max_event_bytes: int = 256 * 1024
    max_batch_bytes: int = 16 * 1024 * 1024
    max_batch_items: int = 10_000
    retention_interval_seconds: float = 3600.0
    log_level: str = "info"
    # -- Storage and bus engines --
    # "" = SQLite in data_dir; or postgresql://user@host:5432/db (?search_path=schema) to share
    # one PostgreSQL database between several fleetlog processes.
    storage_url: str = ""
    # "" = in-process bus; or nats://host:4222[/name] (JetStream) so processes sharing the
    # PostgreSQL database see each other's events live. The path names the installation.
    bus_url: str = ""
    # -- Disruptive Technologies face (add DT settings here) --
    # Service-account key secrets are derived from this key (HMAC); generated on first start
    # (and written to <data_dir>/dt-secret-key) if unset. Only hashes of secrets are stored.
    dt_secret_key: str = ""
    # Lifetime of the access tokens the /oauth2/token endpoint issues.
    dt_token_seconds: int = 3600
    # The `aud` a JWT assertion must carry; empty: the token endpoint URL the request came to.
    dt_token_audience: str = ""
    # A stream is closed (clients reconnect) after this long, as the vendor does.
    dt_stream_max_seconds: float = 3600.0
    # A sensor is OFFLINE after max(this, 1.5 x its heartbeat interval) without an event.
    dt_offline_min_seconds: float = 900.0
    # -- Span face and device transports (add Span, MQTT, UDP settings here) --
    # UDP device transport: port to listen on (0 = off) and address.
    span_udp_port: int = 0
    span_udp_host: str = "127.0.0.1"
    # MQTT device transport: broker URL mqtt://[user:password@]host:port ("" = off).
    span_mqtt_url: str = ""
    span_mqtt_client_id: str = "fleetlog-span"
    span_mqtt_topic_prefix: str = "span"
    # A device session ends (clientDisconnected) after this long without a message.
    span_idle_timeout_seconds: float = 300.0
    # Keep-alive frames on the /from WebSockets when no data flowed for this long.
    span_keepalive_seconds: float = 30.0
    # Activity WebSocket queue per client; beyond it events are dropped (and counted).
    span_activity_queue: int = 256
    # Largest blob a device may upload, largest firmware image.
    span_max_blob_bytes: int = 1024 * 1024
    span_max_image_bytes: int = 8 * 1024 * 1024
    # -- Pelion face (add Pelion settings here) --
    # Most events one /v3/device-events request reads for filters the store cannot apply itself
    # (description, excluded ids/devices/date-times) and for total_count.
    pelion_max_scan_events: int = 200_000
    # -- Delivery: data connectors and webhooks (add delivery settings here) --
    delivery_timeout_seconds: float = 10.0  # one push; no answer in time is a failure
    delivery_max_age_seconds: float = 43200.0  # undelivered events older than this are dropped (12 h)
    delivery_disable_after_seconds: float = 432000.0  # failing this long: SYSTEM_DISABLED (5 days)
    delivery_retry_base_seconds: float = 1.0  # back-off: up to base * 2^n, full jitter
    delivery_retry_max_seconds: float = 300.0
    delivery_lanes: int = 16  # concurrent pushes per connector (order kept per device)
    delivery_window: int = 1000  # events held in memory per connector, whatever the backlog
    delivery_checkpoint_seconds: float = 1.0  # how often cursors are saved
    delivery_max_connectors: int = 100  # connectors and webhooks per tenant
    delivery_max_loop_lag_seconds: float = 0.005  # ingest first: pushes slow down past this loop lag (0: off)
    delivery_sender_process: bool = True  # pushes go out from a child process at lower CPU priority (off: in-process)
    # Networks pushes may not go to: CIDRs and `private`, comma-separated (delivery/targets.py).
    delivery_deny_networks: str = ""

    @property
    def database(self) -> Path:
        return self.data_dir / "fleetlog.db"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        config = cls()
        for f in fields(cls):
            raw = env.get(f"FLEETLOG_{f.name.upper()}")
            if raw is None:
                continue
            current = getattr(config, f.name)
            try:
                value = _parse(raw, current)
            except ValueError:
                kind = type(current).__name__
                raise ConfigError(f"FLEETLOG_{f.name.upper()}: {raw!r} is not a valid {kind}") from None
            setattr(config, f.name, value)
        return config


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse(raw: str, current: object) -> object:
    """`raw` as the type of the default `current`; ValueError if it is not one."""
    if isinstance(current, bool):
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ValueError(raw)
        return word in _TRUE
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if isinstance(current, Path):
        return Path(raw)
    return raw


def describe() -> list[tuple[str, str, str]]:
    """(environment variable, default, type) for each setting: the README's reference table
    is checked against this list by a test."""
    default = Config()
    return [
        (f"FLEETLOG_{f.name.upper()}", str(getattr(default, f.name)), type(getattr(default, f.name)).__name__)
        for f in fields(Config)
    ]
