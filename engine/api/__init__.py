"""The HTTP API (FastAPI): tracking links, unsubscribe, loyalty for the shop's systems, events.

:func:`engine.api.app.create_app` builds the application; ``crm serve`` runs it under uvicorn.
"""
