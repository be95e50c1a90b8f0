"""The pytest side: options, hooks, the recorder, the fixtures. Runs in pytest's processes."""
