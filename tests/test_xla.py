"""XLA options: those the running XLA does not know are left out."""
from jaxstyle import xla


def test_unknown_options_are_left_out():
  assert xla._checked((('xla_jaxstyle_no_such_option', True),),
                      (('xla_backend_optimization_level', 1),)) == {
                          'xla_backend_optimization_level': 1}


def test_a_step_runs_many_times_and_keeps_llvms_default_level():
  assert 'xla_backend_optimization_level' not in xla.step()
  assert xla.step().items() <= xla.once().items()
