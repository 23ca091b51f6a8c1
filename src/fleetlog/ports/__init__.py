"""Ports: the small interfaces the pipeline and the faces need from the outside world.

Adapters in `fleetlog.adapters` implement them; `fleetlog.bootstrap` chooses which.
"""
