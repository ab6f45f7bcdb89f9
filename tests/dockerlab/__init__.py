"""The Docker lab: a private dockerd, images built without a registry, a few containers.

See engine.py (the harness) and conftest_docker.py (session fixtures any conftest can import)."""
