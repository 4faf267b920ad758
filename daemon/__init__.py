"""acqd: an acquisition daemon for microscopes.

Layout (the architecture in file names):

- ``daemon/cameras/``  frame sources: simulated cameras and GenICam through harvesters.
- ``daemon/storage/``  the streaming Zarr v2/v3 engine (OME-NGFF), its sinks and the storage worker.
- ``daemon/ipc/``      the frame type and wire protocols; the only place cameras and storage meet.
- top level            errors, logging, profiles, the run supervisor and the CLI.

Cameras and storage never import each other (checked by ``tests/test_layering.py``).
"""

__version__ = "0.1.0"
