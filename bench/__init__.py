"""probe-engine's benchmarks (not tests): `.venv/bin/python -m bench` from the repository root."""
