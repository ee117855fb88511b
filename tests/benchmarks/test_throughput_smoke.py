"""Crash test of the throughput benchmark: every measurement runs briefly and yields a record.

The figures themselves are not checked (they depend on the machine); only that each measurement
produced a positive, finite value in the shared results schema and that the plot is written.
"""

import math

from benchmarks import throughput_kl_svg0 as throughput


def test_every_measurement_yields_a_record(tmp_path):
  task = "dmc:cartpole-swingup"
  measured = {task: throughput.measure_task(task, seconds=0.05, seed=0,
                                            measurements=list(throughput.MEASUREMENTS))}
  records = throughput.to_records(measured)
  got = {(r.method, r.metric) for r in records}
  expected = {(throughput.METHOD, metric) for metric in throughput.UNITS}
  expected.add((throughput.REVERB_METHOD, "learner_updates_per_s"))
  assert got == expected
  for record in records:
    assert record.task == task and record.seed is None and record.env_steps is None
    assert math.isfinite(record.value) and record.value > 0, record
    assert record.unit == throughput.UNITS[record.metric]
  path = tmp_path / "throughput.png"
  throughput.plot(measured, str(path))
  assert path.stat().st_size > 0
