"""Makes the lab fixture available to the tests in this folder."""

from tests.lab.conftest_lab import netlab

__all__ = ["netlab"]
