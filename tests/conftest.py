import os

# Quiet TensorFlow's C++ logging and keep tests on the CPU, deterministic and small.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
