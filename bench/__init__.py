"""fleetlog benchmarks: `uv run python -m bench --help`. See bench/README.md."""
