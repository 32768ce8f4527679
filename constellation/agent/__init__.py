"""The node agent: registers its Node, keeps a heartbeat lease, and runs exactly the Replicas
bound to it through the runtime, reporting their status."""
