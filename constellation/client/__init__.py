"""The typed resource client: Kubernetes object semantics over a Store."""
