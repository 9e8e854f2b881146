"""Scoped access: credentials with roles, per environment, over the real API, and refusals logged."""
