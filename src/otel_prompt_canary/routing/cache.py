"""The route cache: every prompt's routing, held as an immutable snapshot swapped atomically.

A source (:mod:`~otel_prompt_canary.routing.store_source` or
:mod:`~otel_prompt_canary.routing.http_source`) feeds the cache from a background thread with the
routing flags it reads and the versions they name. The cache turns each flag into a
:class:`RouteEntry`: the stable and canary versions already fetched, the effective canary weight, and
a *chooser*, a closure with everything precomputed that picks the cohort of one call. The entries are
published together as a new :class:`Snapshot` by assigning one reference, so
:meth:`PromptRouter.select() <otel_prompt_canary.routing.PromptRouter.select>` reads one reference,
does no I/O and takes no lock.

Fail-safe rules applied here (see docs/routing.md):

- a rollout seen in state ``rolled_back`` is remembered for the life of the process; any later flag
  that shows it ``ramping`` or ``paused`` (a stale replica, a lagging read) routes everyone to stable,
  and one that shows it ``promoted`` (a promotion since reverted, read late) is ignored: the prompt
  keeps the entry of the revert;
- a flag whose versions cannot be fetched keeps the prompt's previous entry;
- a prompt missing from a later read keeps its previous entry (the registry never deletes prompts).
"""

from __future__ import annotations

import hashlib
import logging
import random
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Final, final

from otel_prompt_canary.errors import NotFoundError, RegistryUnavailableError
from otel_prompt_canary.feedback import FeedbackKeys
from otel_prompt_canary.registry.models import PromptVersion, RolloutState, Route
from otel_prompt_canary.routing.cohort import BUCKETS, CANARY, STABLE, unit_key_bytes
from otel_prompt_canary.routing.selection import Arm, Selection

__all__ = ["Chooser", "RouteCache", "RouteEntry", "Snapshot", "VersionFetcher", "make_chooser"]

logger = logging.getLogger("otel_prompt_canary.routing")

#: Picks the selection of one call from its unit key (None: at random).
Chooser = Callable[[str | None], Selection]
#: Fetches version ``version`` of prompt ``name`` (raises NotFoundError if it does not exist).
VersionFetcher = Callable[[str, int], PromptVersion]

# A private generator: keyless calls must not consume, nor depend on, the application's random seed.
_rng: Final = random.Random()


def make_chooser(stable: Arm, canary: Arm | None, rollout_id: str | None, weight_bp: int) -> Chooser:
    """A closure choosing between ``stable`` and ``canary`` as :mod:`.cohort` specifies.

    The hash below is :func:`~otel_prompt_canary.routing.cohort.bucket` inlined, with the salt prefix
    hashed once (copying a pre-fed SHA-256 state is cheaper than hashing the prefix again); the tests
    check that both agree. Selections are built without calling ``Selection.__init__``: on this hot
    path the call costs as much as the rest of the bookkeeping.
    """
    new = object.__new__

    if canary is None or rollout_id is None or weight_bp <= 0:

        def choose_stable(unit_key: str | None) -> Selection:
            sel: Selection = new(Selection)
            sel._arm = stable
            sel.unit_key = unit_key
            return sel

        return choose_stable

    if weight_bp >= BUCKETS:

        def choose_canary(unit_key: str | None) -> Selection:
            sel: Selection = new(Selection)
            sel._arm = canary
            sel.unit_key = unit_key
            return sel

        return choose_canary

    salted = hashlib.sha256(unit_key_bytes(rollout_id) + b":").copy
    unpack = struct.Struct(">Q").unpack_from
    rand = _rng.random
    buckets = float(BUCKETS)

    def choose(unit_key: str | None) -> Selection:
        sel: Selection = new(Selection)
        sel.unit_key = unit_key
        if unit_key is None:
            sel._arm = canary if rand() * buckets < weight_bp else stable
            return sel
        hasher = salted()
        try:
            hasher.update(unit_key.encode())
        except (AttributeError, UnicodeEncodeError):
            hasher.update(unit_key_bytes(unit_key))
        sel._arm = canary if unpack(hasher.digest())[0] % BUCKETS < weight_bp else stable
        return sel

    return choose


@final
class RouteEntry:
    """One prompt's routing as the router applies it.

    ``route`` is the flag as read from the registry. ``canary`` is None and ``canary_weight_bp`` is 0
    whenever no canary traffic may flow: no active rollout, or a rollout this process has seen rolled
    back. ``rollout_id`` is the active rollout (None when none is active).
    """

    __slots__ = ("_feedback_keys", "canary", "canary_weight_bp", "choose", "rollout_id", "route", "stable")

    def __init__(
        self,
        route: Route,
        stable: PromptVersion,
        canary: PromptVersion | None,
        *,
        rollout_id: str | None,
        canary_weight_bp: int,
        feedback_keys: FeedbackKeys | None = None,
    ) -> None:
        self.route = route
        self.stable = stable
        self.canary = canary
        self.rollout_id = rollout_id
        self.canary_weight_bp = canary_weight_bp if canary is not None else 0
        self._feedback_keys = feedback_keys
        stable_arm = Arm.of_version(stable, STABLE, rollout_id, feedback_keys)
        canary_arm = None if canary is None else Arm.of_version(canary, CANARY, rollout_id, feedback_keys)
        self.choose: Chooser = make_chooser(stable_arm, canary_arm, rollout_id, self.canary_weight_bp)

    def without_canary(self) -> RouteEntry:
        """This entry with everyone on stable and no active rollout (after a rollback was seen)."""
        return RouteEntry(
            self.route,
            self.stable,
            None,
            rollout_id=None,
            canary_weight_bp=0,
            feedback_keys=self._feedback_keys,
        )

    def __repr__(self) -> str:
        canary = None if self.canary is None else self.canary.version
        return (
            f"RouteEntry(prompt={self.route.prompt!r}, stable={self.stable.version}, "
            f"canary={canary}, canary_weight_bp={self.canary_weight_bp}, "
            f"rollout_id={self.rollout_id!r})"
        )


@final
class Snapshot:
    """An immutable view of every known prompt's routing; never mutated once published."""

    __slots__ = ("choosers", "entries")

    def __init__(self, entries: Mapping[str, RouteEntry]) -> None:
        self.entries: Mapping[str, RouteEntry] = dict(entries)
        #: prompt name -> chooser, the only thing ``select()`` reads.
        self.choosers: Mapping[str, Chooser] = {n: e.choose for n, e in self.entries.items()}


EMPTY_SNAPSHOT: Final = Snapshot({})


def _effective(route: Route, rolled_back: frozenset[str]) -> tuple[str | None, int | None]:
    """The (rollout_id, canary_version) the router applies for ``route``."""
    if not route.state.active or route.rollout_id is None:
        return None, None
    if route.rollout_id in rolled_back:
        return None, None  # a stale read of a rollout already seen rolled back
    return route.rollout_id, route.canary_version


def _summary(problems: list[str]) -> str:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"


class RouteCache:
    """Holds the current :class:`Snapshot` and builds the next one from what a source reads.

    One source thread writes; any number of threads read :attr:`snapshot` without locking.
    ``feedback_keys`` mints the feedback keys of the selections (None: they have none).
    """

    def __init__(self, feedback_keys: FeedbackKeys | None = None) -> None:
        self._feedback_keys = feedback_keys
        #: The current snapshot: read it once per decision, it never changes under the reader.
        self.snapshot: Snapshot = EMPTY_SNAPSHOT
        #: Set once the first read of the registry has been applied.
        self.ready = threading.Event()
        #: Wall-clock time of the last successful read, or None.
        self.last_success: float | None = None
        self._read_error: str | None = None  # the last read failed: why
        self._partial: str | None = None  # the last read applied was not applied in full: why
        self._versions: dict[tuple[str, int], PromptVersion] = {}
        self._rolled_back: frozenset[str] = frozenset()
        self._missing: set[tuple[str, int]] = set()  # (prompt, revision) already warned about
        self._lock = threading.Lock()

    @property
    def last_error(self) -> str | None:
        """Why the last read failed, or what of the last read could not be applied (a version not
        readable yet, a malformed route); None once a read is applied in full."""
        return self._read_error or self._partial

    @property
    def rolled_back(self) -> frozenset[str]:
        """Every rollout id this process has seen in state ``rolled_back``."""
        return self._rolled_back

    def knows_rollout(self, rollout_id: str) -> bool:
        """True when ``rollout_id`` is (or was, rolled back) the rollout of a route in the cache."""
        if rollout_id in self._rolled_back:
            return True
        return any(entry.route.rollout_id == rollout_id for entry in self.snapshot.entries.values())

    def apply(
        self, routes: Iterable[Route], fetch_version: VersionFetcher, *, skipped: Iterable[str] = ()
    ) -> bool:
        """Apply the routing flags ``routes`` and publish the new snapshot.

        Returns False if a version could not be found (the affected prompts keep their previous
        entry; the caller should read again soon). Transport errors from ``fetch_version`` propagate
        after rollbacks seen in ``routes`` have already taken effect. ``skipped`` says which routes
        of the read could not even be parsed; they, and the versions not found, are the
        :attr:`last_error` until a read is applied in full.
        """
        problems = list(skipped)
        routes = list(routes)
        with self._lock:
            seen = {
                r.rollout_id
                for r in routes
                if r.state is RolloutState.ROLLED_BACK
                and r.rollout_id
                and r.rollout_id not in self._rolled_back
            }
            if seen:
                # Stop routing to these canaries now, before any I/O that could fail.
                for rolled in sorted(seen):
                    logger.info("rollout %s was rolled back: no more canary traffic for it", rolled)
                self._publish(
                    {
                        name: e.without_canary() if e.rollout_id in seen else e
                        for name, e in self.snapshot.entries.items()
                    }
                )
                self._rolled_back = self._rolled_back | seen

            entries = dict(self.snapshot.entries)
            complete = True
            for route in routes:
                if route.state is RolloutState.PROMOTED and route.rollout_id in self._rolled_back:
                    continue  # a stale read: this promotion was reverted, and the revert was seen
                rollout_id, canary_version = _effective(route, self._rolled_back)
                try:
                    stable = self._version(route.prompt, route.stable_version, fetch_version)
                    canary = (
                        None
                        if canary_version is None
                        else self._version(route.prompt, canary_version, fetch_version)
                    )
                except NotFoundError as exc:
                    complete = False
                    # Retried on every read: say it once per route, not on every retry.
                    missing = (route.prompt, route.revision)
                    log = logger.debug if missing in self._missing else logger.warning
                    if len(self._missing) > 1000:
                        self._missing.clear()
                    self._missing.add(missing)
                    log("cannot apply the route of %r yet: %s", route.prompt, exc)
                    problems.append(f"cannot apply the route of {route.prompt!r} yet: {exc}")
                    continue
                entries[route.prompt] = RouteEntry(
                    route,
                    stable,
                    canary,
                    rollout_id=rollout_id,
                    canary_weight_bp=route.canary_weight_bp,
                    feedback_keys=self._feedback_keys,
                )
            self._publish(entries)
            self.last_success = time.time()
            self._read_error = None
            self._partial = None if not problems else _summary(problems)
            self.ready.set()
            return complete

    def record_success(self) -> None:
        """Note that a read succeeded (even if nothing changed)."""
        self.last_success = time.time()
        self._read_error = None

    def record_error(self, message: str) -> None:
        """Note that a read failed; the snapshot stays as it is."""
        self._read_error = message

    def _version(self, name: str, version: int, fetch: VersionFetcher) -> PromptVersion:
        key = (name, version)
        found = self._versions.get(key)
        if found is None:
            found = fetch(name, version)
            if (found.name, found.version) != key:
                raise RegistryUnavailableError(
                    f"asked for {name}@{version}, the registry answered {found.ref}"
                )
            self._versions[key] = found
        return found

    def _publish(self, entries: Mapping[str, RouteEntry]) -> None:
        self.snapshot = Snapshot(entries)  # one reference assignment: readers see old or new
        keep: set[tuple[str, int]] = set()
        for name, entry in entries.items():
            keep.add((name, entry.stable.version))
            if entry.canary is not None:
                keep.add((name, entry.canary.version))
        self._versions = {k: v for k, v in self._versions.items() if k in keep}
