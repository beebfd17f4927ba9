"""Calibrating the cost model against measurements.

* :mod:`~fedsim.calibration.measurements` — the table of published on-device training times.
* :mod:`~fedsim.calibration.check` — predicting its rows, ranking models, fitting efficiencies.
* :mod:`~fedsim.calibration.report` — ``fedsim profiles check`` as text and CSV.
* :mod:`~fedsim.calibration.host` — ``fedsim profiles calibrate``: a profile of this host, from
  :mod:`~fedsim.calibration.timing` (measuring it), :mod:`~fedsim.calibration.fitting`
  (fitting it) and :mod:`~fedsim.calibration.profile_file` (writing it).
"""
