"""Newsroom: scheduled news ingestion into PostgreSQL."""

__version__ = "0.1.0"

# Stamped on every row a stage writes, so re-processing can find what is stale.
PIPELINE_VERSION = __version__
