"""Delivery workers: data connectors and webhooks that push events out, at least once."""
