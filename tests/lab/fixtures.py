"""The network-namespace lab's session fixture `netlab`, a pytest plugin registered in
tests/conftest.py (one lab for every test module that asks for it).

Missing prerequisites (not root, no `ip`, iptables, dnsmasq or sysctl) skip the lab tests with
the reason, except under CI=true, where they FAIL: CI runs as root with everything installed,
so a missing piece there is a broken pipeline, and a skip would hide it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.lab.netlab import Lab, missing_prerequisites
from tests.session import sigterm_as_interrupt, unavailable

DEFAULT_PREFIX = "pe-test"  # not the CLI's "pe": a lab brought up by hand survives a test run


def require_lab_prerequisites() -> None:
    """Return if the lab can run here; else fail under CI, skip elsewhere."""
    problems = missing_prerequisites()
    if problems:
        unavailable("network-namespace lab", "; ".join(problems))


@pytest.fixture(scope="session")
def netlab() -> Iterator[Lab]:
    """The lab, up for the whole session, torn down at the end whatever happened.

    NETLAB_PREFIX overrides the namespace prefix (default pe-test)."""
    require_lab_prerequisites()
    prefix = os.environ.get("NETLAB_PREFIX", DEFAULT_PREFIX)
    with sigterm_as_interrupt():
        lab = Lab.up(prefix)  # cleans up if it fails
        try:
            yield lab
        finally:
            lab.down()
