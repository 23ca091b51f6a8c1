"""The pure core: the canonical event, the type catalog, queries and the registry model.

Nothing in here does I/O or imports another fleetlog layer.
"""
