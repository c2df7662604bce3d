"""Base layer: the user-error type, atomic file writing and shared argument checks (no Keras)."""
