"""Frame sources: simulated cameras and GenICam cameras through harvesters."""
