"""Control loops: one reconciler per concern, and the machinery that runs them."""
