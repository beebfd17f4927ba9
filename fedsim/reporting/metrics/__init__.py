"""Numbers a report shows, computed from a :class:`Run` (no plotting, no I/O).

Definitions (also in docs/reports.md):

- *fleet energy*: joules spent by every selected client in every recorded round, all phases
  (compute + downlink + uplink + idle); the last value of rounds.csv ``energy_j``.
- *energy per accuracy point*: fleet energy divided by the final test accuracy in percentage
  points (J/pp): what one point of the final accuracy cost the fleet.
- *participation*: aggregated client-rounds over selected client-rounds.
- *busy* seconds: compute + communication; *idle* seconds: waiting for the round to close
  after the client's upload arrived.

One module per kind of number; this package re-exports them all, so callers write
``metrics.headline(run)`` without knowing which module computes it.
"""

from __future__ import annotations

from fedsim.reporting.metrics.bits import (
    BitMatrix,
    BitTrajectory,
    bit_matrix,
    bit_trajectories,
    has_quantized_bits,
    last_round,
    layer_order,
    mean_bits_per_round,
)
from fedsim.reporting.metrics.curves import accuracy_curve, band
from fedsim.reporting.metrics.fleet import fleet_groups, fleet_size
from fedsim.reporting.metrics.headline import Headline, headline, reach
from fedsim.reporting.metrics.per_class import (
    PHASE_COLUMNS,
    Stats,
    class_accuracy,
    class_stats,
    client_stats,
    status_kinds,
)
from fedsim.reporting.metrics.timeline import (
    PHASE_EVENTS,
    PHASE_SEQUENCE,
    Mark,
    Segment,
    Timeline,
    timeline,
    timeline_rounds,
)

__all__ = [
    "PHASE_COLUMNS",
    "PHASE_EVENTS",
    "PHASE_SEQUENCE",
    "BitMatrix",
    "BitTrajectory",
    "Headline",
    "Mark",
    "Segment",
    "Stats",
    "Timeline",
    "accuracy_curve",
    "band",
    "bit_matrix",
    "bit_trajectories",
    "class_accuracy",
    "class_stats",
    "client_stats",
    "fleet_groups",
    "fleet_size",
    "has_quantized_bits",
    "headline",
    "last_round",
    "layer_order",
    "mean_bits_per_round",
    "reach",
    "status_kinds",
    "timeline",
    "timeline_rounds",
]
