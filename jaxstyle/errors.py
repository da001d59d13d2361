"""The one exception type that means "the user gave us something wrong"."""


class InputError(ValueError):
  """Bad input or config. The CLI prints its message as one line and exits 2."""
