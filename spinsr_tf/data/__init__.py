"""Data: annealed HDF5 datasets, the Gaussian degradation, image I/O.

Pure NumPy/h5py; nothing here imports Keras.
"""

from spinsr_tf.data.degradation import Degradation, gaussian_downsample, gaussian_kernel
from spinsr_tf.data.generate import dataset_attrs, generate_dataset, read_spins
from spinsr_tf.data.ovf import from_field, to_field

__all__ = [
    "Degradation",
    "dataset_attrs",
    "from_field",
    "gaussian_downsample",
    "gaussian_kernel",
    "generate_dataset",
    "read_spins",
    "to_field",
]
