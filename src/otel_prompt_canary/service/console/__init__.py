"""The web console: server-rendered pages over the control plane, for people (docs/console.md).

:func:`create_console` builds it; the control plane mounts it at ``/console`` (and ``/`` leads
there). Pages: prompts, a prompt, a version's review, a rollout live, the audit trail, the alert log
and drift. Sign-in with a credential gives a signed session cookie (:mod:`.session`); every form
carries a CSRF token (:mod:`.csrf`); every action asks for the role the API asks for
(:mod:`.visitors`).
"""

from otel_prompt_canary.service.console.app import create_console

__all__ = ["create_console"]
