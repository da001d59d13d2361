"""Benchmarks of jaxstyle against a PyTorch baseline and pastiche (CPU)."""
