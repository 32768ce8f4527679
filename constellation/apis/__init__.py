"""The kinds users and controllers write, as Pydantic models: validation only, no I/O."""
