"""The metric instruments, created once per instrumentation from the meter it is given.

The two counters are :class:`~otel_prompt_canary.instrumentation._counters.LocalCounter` objects,
summed in process and reported as observable counters (see that module for why); the histograms are
the SDK's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from opentelemetry.metrics import Histogram, Meter

from otel_prompt_canary import names
from otel_prompt_canary.instrumentation._counters import LocalCounter, local_counter

__all__ = ["Instruments"]

# Bucket boundaries: the SDK defaults are in milliseconds; these fit seconds, tokens and [0, 1] scores.
_DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
_TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_SCORE_BUCKETS: Final = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True, slots=True)
class Instruments:
    """``prompt_canary.responses``, ``.checks``, ``.score``, ``.token.usage`` and ``.duration``."""

    responses: LocalCounter
    checks: LocalCounter
    score: Histogram
    token_usage: Histogram
    duration: Histogram

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        """Create every instrument on ``meter``."""
        return cls(
            responses=local_counter(
                meter,
                names.METRIC_RESPONSES,
                unit="{response}",
                description="LLM responses by prompt version and cohort (error.type on failures)",
            ),
            checks=local_counter(
                meter,
                names.METRIC_CHECKS,
                unit="{check}",
                description="Check outcomes by prompt version, cohort, check and outcome",
            ),
            score=meter.create_histogram(
                names.METRIC_SCORE,
                unit="1",
                description="Scores of responses by prompt version, cohort and evaluation name",
                explicit_bucket_boundaries_advisory=_SCORE_BUCKETS,
            ),
            token_usage=meter.create_histogram(
                names.METRIC_TOKEN_USAGE,
                unit="{token}",
                description="Tokens used per LLM call, by prompt version, cohort and token type",
                explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
            ),
            duration=meter.create_histogram(
                names.METRIC_DURATION,
                unit="s",
                description="Duration of LLM calls, streams until their end, by prompt version and cohort",
                explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
            ),
        )
