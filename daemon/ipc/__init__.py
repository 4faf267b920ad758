"""The frame type and the wire protocols: where cameras and storage meet."""
