"""Base layer: the user-error type, atomic files and output guards, shared argument checks and
import hooks (no Keras)."""
