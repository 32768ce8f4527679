"""The node runtime: replicas as Linux processes in namespaces and cgroups, supervised by the
agent's own process (no helper process per replica). Knows nothing of the store or the API
kinds: the agent translates Replicas into the plain specs defined here."""
