"""A third process that records users' feedback with the answers' feedback keys only.

Run by ``opentelemetry-instrument`` (the instrumentation reports to the control plane named by
``OTEL_PROMPT_CANARY_REGISTRY``), like a web front end's backend that stored each answer's key: it
reads ``[key, thumbs_up]`` pairs from the JSON file named by ``APP_FEEDBACK_FILE``, records each with
``record_feedback(key, thumbs_up, name="thumbs_up")``, prints ``{"recorded": n, "refused": m}`` and
exits; the instrumentation sends what it counted as it exits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from otel_prompt_canary.instrumentation import record_feedback


def main() -> None:
    pairs = json.loads(Path(os.environ["APP_FEEDBACK_FILE"]).read_text())
    recorded = sum(record_feedback(key, bool(thumbs_up), name="thumbs_up") for key, thumbs_up in pairs)
    print(json.dumps({"recorded": recorded, "refused": len(pairs) - recorded}), flush=True)


if __name__ == "__main__":
    main()
