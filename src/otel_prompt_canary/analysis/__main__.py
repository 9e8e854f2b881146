"""Print the policy's JSON Schema: ``python -m otel_prompt_canary.analysis > schemas/policy.schema.json``."""

from __future__ import annotations

import json

from otel_prompt_canary.analysis.policy import policy_json_schema

if __name__ == "__main__":
    print(json.dumps(policy_json_schema(), indent=2, sort_keys=True))
