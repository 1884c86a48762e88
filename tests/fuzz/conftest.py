"""The fuzz tests share the API tests' live server fixture."""

from tests.api.conftest import serve_app

__all__ = ["serve_app"]
