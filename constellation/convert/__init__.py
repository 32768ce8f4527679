"""Conversion of Docker Compose files and Kubernetes manifests into Constellation manifests."""
