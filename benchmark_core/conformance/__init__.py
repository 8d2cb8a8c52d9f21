"""The plugin conformance suite and its pytest plugin."""
