"""The one exception type that means "the user gave us something wrong"."""


class InputError(ValueError):
  """Bad input or config. The CLI prints its message as one line and exits 2."""


class ResourceError(RuntimeError):
  """A request the machine cannot serve (e.g. too little memory). Exit 3."""


class NumericalError(RuntimeError):
  """The loss or its gradient stopped being finite. Exit 4."""
