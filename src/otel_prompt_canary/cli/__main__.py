"""``python -m otel_prompt_canary.cli``: the same as the ``prompt-canary`` command."""

from otel_prompt_canary.cli import main

main()
