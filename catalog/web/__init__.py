"""The web UI: browse, search, inspect, download and manage artifacts.

``catalog ui`` serves it (:func:`catalog.web.server.serve`);
:func:`create_app` builds the Starlette application over a
:class:`~catalog.client.Catalog` that owns its own projection file. Needs the
``web`` extra (``pip install 'catalog[web]'``): Starlette, Jinja2 and Uvicorn.
Pages are rendered on the server; the one stylesheet and the one small script
ship in ``static/``, and nothing is fetched from the internet.
"""

from catalog.web.app import create_app

__all__ = ["create_app"]
