"""The command line's application around the library: it reads a config
once (config, validation), loads the inputs, runs and records the solve
(run, contents, batch, outputs, checkpoint, workdir) and sweeps (sweep,
hyper, sheet). The library modules know nothing of it."""
