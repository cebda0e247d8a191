"""The web UI: browse, search, inspect, download and manage artifacts.

``catalog serve`` serves it beside the query API (:mod:`catalog.server`);
:func:`create_app` builds the Starlette application over a
:class:`~catalog.client.Catalog` (one that reads the service's projection, or
one with a projection file of its own).
Pages are rendered on the server; the one stylesheet and the one small script
ship in ``static/``, and nothing is fetched from the internet.
"""

from catalog.web.app import create_app

__all__ = ["create_app"]
