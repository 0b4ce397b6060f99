"""The admin server: JSON API, web page and Prometheus metrics of the worker (``abm serve``)."""

from worker.admin.app import create_admin_app

__all__ = ["create_admin_app"]
