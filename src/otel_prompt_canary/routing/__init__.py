"""Routing: applies each prompt's routing flag to live traffic, sticky per unit and fail-safe.

::

    from otel_prompt_canary.routing import PromptRouter

    router = PromptRouter("http://prompt-canary:8000", fallbacks={"support-reply": "You help..."})
    with router.select("support-reply", unit_key=user_id) as selection:
        prompt = selection.render(question=question)

:class:`PromptRouter` keeps a snapshot of every routing flag in memory, refreshed on a background
thread; :func:`assign_cohort` is the cohort function (documented in :mod:`.cohort`);
:func:`current_selection` gives instrumentation the selection the current call runs under.
"""

from otel_prompt_canary.routing.cohort import BUCKETS, Cohort, assign_cohort, bucket, is_canary
from otel_prompt_canary.routing.router import FallbackTemplate, PromptRouter, RouterStatus
from otel_prompt_canary.routing.selection import FALLBACK_VERSION, Selection, current_selection

__all__ = [
    "BUCKETS",
    "FALLBACK_VERSION",
    "Cohort",
    "FallbackTemplate",
    "PromptRouter",
    "RouterStatus",
    "Selection",
    "assign_cohort",
    "bucket",
    "current_selection",
    "is_canary",
]
