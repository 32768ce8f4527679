"""GitOps: keep a folder or a git repository applied to the store."""
