"""jaxstyle: Gatys et al. (2015) neural style transfer in JAX/Flax."""
