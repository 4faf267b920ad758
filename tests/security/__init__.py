"""Security tests: credentials never in output, hostile profiles over control, runtime path escapes, permissions."""
