"""Local demo: a real Prometheus and the pieces that drive a canary on this machine."""
