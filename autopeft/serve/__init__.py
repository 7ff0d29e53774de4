"""``autopeft serve``: an HTTP API (FastAPI) and small web pages over one store.

* :mod:`~autopeft.serve.config` — what the server was started with, and the refusal to
  accept searches from the network without a token;
* :mod:`~autopeft.serve.searches` — a search request body checked by :class:`SearchSettings`
  and turned into ``autopeft search`` arguments;
* :mod:`~autopeft.serve.runs` — searches started in the background (a local process or a
  Ray Job) and stopped again;
* :mod:`~autopeft.serve.api` and :mod:`~autopeft.serve.pages` — the JSON API and the pages;
* :mod:`~autopeft.serve.app` — the FastAPI app and :func:`~autopeft.serve.app.serve`.

Nothing here is imported by ``autopeft --help``: the CLI imports it when ``serve`` runs.
"""
