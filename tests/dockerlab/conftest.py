"""Makes the Docker lab fixtures available to the tests in this folder, and prints the lab's
timings in the terminal summary."""

from typing import Any

from tests.dockerlab.conftest_docker import (
    docker_engine,
    docker_images,
    docker_lab,
    docker_url,
    report_facts,
)

__all__ = ["docker_engine", "docker_images", "docker_lab", "docker_url"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    report_facts(terminalreporter)
