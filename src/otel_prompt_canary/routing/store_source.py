"""Routes read straight from a registry store (SQLite file or PostgreSQL), polled on a short interval.

Each poll is one ``list_routes()`` of the source's environment; versions are fetched with
``get_version()`` only for the versions the cache does not hold yet, and only when the flags
changed. If the store cannot be opened at start, the source keeps trying in the background.
"""

from __future__ import annotations

from collections.abc import Callable

from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.models import Route
from otel_prompt_canary.routing.cache import RouteCache
from otel_prompt_canary.routing.source import Backoff, RouteSource

__all__ = ["DEFAULT_POLL_INTERVAL", "StoreSource"]

#: Seconds between two reads of the store.
DEFAULT_POLL_INTERVAL = 0.25


class StoreSource(RouteSource):
    """Polls a :class:`~otel_prompt_canary.registry.base.Registry` for routing flags.

    ``open_registry`` is called on the source thread (and again after a failure to open) so that an
    unreachable database at start delays routing state instead of failing the application. With
    ``owns_registry`` the store is closed with the source.
    """

    def __init__(
        self,
        cache: RouteCache,
        open_registry: Callable[[], Registry],
        *,
        description: str,
        owns_registry: bool,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        backoff: Backoff | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
    ) -> None:
        self.environment = environment
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        super().__init__(cache, description=description, backoff=backoff)
        self._open_registry = open_registry
        self._owns_registry = owns_registry
        self._registry: Registry | None = None
        self._poll_interval = poll_interval
        self._last_routes: list[Route] | None = None

    def poll_once(self) -> float:
        registry = self._registry
        if registry is None:
            registry = self._registry = self._open_registry()
        # The default environment is asked as registries written before environments know it.
        if self.environment == DEFAULT_ENVIRONMENT:
            routes = registry.list_routes()
        else:
            routes = registry.list_routes(environment=self.environment)
        # Remember the flags only once fully applied, so that a missing version is retried.
        if routes != self._last_routes and self.cache.apply(routes, registry.get_version):
            self._last_routes = routes
        return self._poll_interval

    def _release(self) -> None:
        registry, self._registry = self._registry, None
        if registry is not None and self._owns_registry:
            registry.close()
