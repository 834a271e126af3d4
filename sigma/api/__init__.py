"""The FastAPI backend: REST under `/api`, `/ws` bus broadcast, JWT auth with roles, request
logging, `/metrics`, and the built dashboard at `/`."""

from sigma.api.app import create_api
from sigma.api.deps import ApiDeps, api_deps
from sigma.api.users import ensure_admin

__all__ = ["ApiDeps", "api_deps", "create_api", "ensure_admin"]
