"""fleetlog: a device event service for IoT fleets."""

__version__ = "0.1.0"
