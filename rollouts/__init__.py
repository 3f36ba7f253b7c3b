"""rollouts: a progressive-delivery controller and canary analyzer for Kubernetes."""

__version__ = "0.1.0"
