"""The control-plane suite: the HTTP API, alert receivers and reports, in process and on loopback."""
