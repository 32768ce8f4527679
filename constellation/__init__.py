"""Constellation: a small Kubernetes-style declarative orchestrator for Linux processes."""

__version__ = "0.1.0"
