"""Frame sources: simulated cameras and GenICam cameras through harvesters.

- ``camera``: the ``Camera`` protocol, lifecycle states, statistics and the frame counter.
- ``settings``: what a profile sets (``SimulatedCameraSettings``, ``GenicamCameraSettings``, ``DeviceSelector``).
- ``factory``: ``open_camera(settings)`` / ``create_camera(settings)``.
- ``simulated``: the simulated camera (a product module). ``pattern``: the reference radial sine, shared with the
  fake GenTL producer.
- ``genicam``: the only module importing harvesters/genicam; helped by ``features`` (checked node-map access),
  ``device_selection``, ``gentl_producers`` (finding .cti files) and ``pixel_format`` (PFNC -> numpy).
"""
