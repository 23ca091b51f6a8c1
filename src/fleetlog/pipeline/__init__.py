"""The service layer: ingest (validate, dedupe, persist, publish), the registry directory with
its access rules, and the background workers (deferred events, retention)."""
