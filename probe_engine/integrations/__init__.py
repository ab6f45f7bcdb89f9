"""Integrations with the tools that run probe-engine for its users (Airflow, for now).

Each integration lives in its own module and imports its tool only when that module is
imported: `import probe_engine` never pulls in Airflow. Use
`from probe_engine.integrations.airflow import ProbeMatrixOperator`.
The tool-free part (run, tell, write, sum up for the next task) is in `diagnostics`.
"""

from __future__ import annotations
