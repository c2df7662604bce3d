"""napari plugin: open spin maps and images, super-resolve a layer with a shipped model or a
network fitted to it (``pip install -e ".[napari]"``; docs/napari.md).

The manifest ``napari.yaml`` contributes a reader (:mod:`.reader`: OVF, the project's HDF5 files,
``.npy``) and a dock widget (:mod:`.widget`). What the widget runs lives in :mod:`.compute`,
which imports neither napari nor Qt, so it is tested without a display. This package sits on top
of the import layers, beside :mod:`spinsr_tf.cli`: nothing in the core imports it, and importing
it loads no napari or Qt.
"""
