"""The command-line suite: ``prompt-canary`` against a registry file and a served control plane."""
