"""The router suite: cohort assignment, selections, and routes read from a store or over HTTP."""
