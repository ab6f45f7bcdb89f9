"""The version, apart so `probe-engine --version` imports nothing else."""

__version__ = "0.1.0"
