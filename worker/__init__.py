"""Orchestration: the pipeline, the scheduler, the CLI and the admin API and page."""
