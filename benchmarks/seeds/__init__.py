"""The source implementations' own code, run as written, against their presets."""
