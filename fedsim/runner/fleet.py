"""The fleet a scenario describes: clients with their device profile, link and budget, and
their dynamics (availability model, failure probability, battery).

Torch-free, so `fedsim validate` resolves and checks a fleet without loading torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedsim.config.loader import LoadedScenario
from fedsim.config.schema import AutoBudget, Scenario, auto_budget
from fedsim.errors import InputError
from fedsim.hardware import DeviceProfile, LinkProfile, ProfileLibrary


# ---------------------------------------------------------------------------------------------
# Fleet resolution (torch-free: also used by `fedsim validate`)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FleetClient:
    """One client: its device, link and bit budget. A client of a ``budget_bits: auto``
    group carries its settings in ``auto`` and a NaN budget until the run derives it from
    the cost model (:mod:`fedsim.runner.budgets`)."""

    client_id: int
    group: str
    budget_bits: float
    profile: DeviceProfile
    link: LinkProfile
    group_index: int = 0
    auto: AutoBudget | None = None
    profile_files: tuple[Path, ...] = ()  # the device and link files (run.json fingerprints)


def group_labels(sc: Scenario) -> list[str]:
    """A unique label per fleet group: its name, else its profile (suffixed if repeated)."""
    base = [g.label for g in sc.fleet]
    out = []
    for i, b in enumerate(base):
        out.append(b if base.count(b) == 1 else f"{b}#{base[:i + 1].count(b)}")
    return out


def resolve_fleet(loaded: LoadedScenario) -> list[FleetClient]:
    """Look up every group's profile (scenario's own profile paths first), apply overrides."""
    sc = loaded.scenario
    try:
        library = ProfileLibrary.load(sc.profiles, base_dir=loaded.base_dir,
                                      source_file=loaded.label)
    except InputError as exc:
        if exc.file is None:
            raise InputError(exc.detail, file=loaded.label, key=exc.key or "profiles") from None
        raise
    except OSError as exc:
        key = "profiles"
        for i, entry in enumerate(sc.profiles):
            try:
                (loaded.base_dir / entry).exists()
            except OSError:
                key = f"profiles[{i}]"
                break
        raise InputError(f"cannot read this profile path: {exc.strerror}",
                         file=loaded.label, key=key) from None
    clients: list[FleetClient] = []
    cid = 0
    labels = group_labels(sc)
    for i, group in enumerate(sc.fleet):
        key = f"fleet[{i}]"
        profile = library.profile_for(group.profile, group.override or None,
                                      file=loaded.label, key_prefix=key)
        if group.link is not None:
            link = library.link(group.link, file=loaded.label, key=f"{key}.link")
            profile = profile.model_copy(update={"link": link})
        assert isinstance(profile.link, LinkProfile)
        files = (library.source_of(group.profile, "device"),)
        if library.has_source(profile.link.name, "link"):  # not an inline link
            files += (library.source_of(profile.link.name, "link"),)
        spec = sc.group_budget(i)
        auto = auto_budget(spec)
        budget = math.nan if auto is not None else float(spec)  # type: ignore[arg-type]
        for _ in range(group.count):
            clients.append(FleetClient(cid, labels[i], budget, profile, profile.link, i, auto,
                                       files))
            cid += 1
    return clients


# ---------------------------------------------------------------------------------------------
# Fleet dynamics: availability, failures, batteries
# ---------------------------------------------------------------------------------------------
class _PerClient:
    """Availability chosen per client (a fleet group may override the scenario's model)."""

    def __init__(self, models: dict[int, Any]) -> None:
        self.models = models

    def windows(self, client_id: int):  # type: ignore[no-untyped-def]
        return self.models[client_id].windows(client_id)


def build_dynamics(loaded: LoadedScenario, fleet: Sequence[FleetClient]) -> tuple[Any, dict]:
    """Availability model and per-client failure/battery state, validated against the fleet."""
    from fedsim.engine.availability import AlwaysOn, Diurnal, Markov, Trace, load_trace
    from fedsim.engine.dynamics import ClientDynamics, Recharge

    sc = loaded.scenario
    labels = [{c.group, c.profile.device_class, c.profile.name} for c in fleet]

    def model_for(cfg: Any, key: str) -> Any:
        if cfg.model == "always":
            return AlwaysOn()
        if cfg.model == "diurnal":
            return Diurnal(sc.seed, cfg.period_s, cfg.online_fraction)
        if cfg.model == "markov":
            return Markov(sc.seed, cfg.mean_on_s, cfg.mean_off_s)
        path = Path(cfg.trace)
        if not path.is_absolute():
            path = loaded.base_dir / path
        return Trace(load_trace(path, labels, file=loaded.label, key=f"{key}.trace"),
                     default_on=cfg.unlisted == "online")

    default = model_for(sc.availability, "availability")
    group_models: dict[int, Any] = {}
    for i, g in enumerate(sc.fleet):
        if g.availability is not None:
            group_models[i] = model_for(g.availability, f"fleet[{i}].availability")
    availability: Any = default
    if group_models:
        availability = _PerClient({c.client_id: group_models.get(c.group_index, default)
                                   for c in fleet})
    if isinstance(default, AlwaysOn) and not group_models:
        availability = None

    dynamics: dict[int, Any] = {}
    for c in fleet:
        i, g = c.group_index, sc.fleet[c.group_index]
        d = ClientDynamics(failure_prob=g.failure_prob)
        if g.battery is not None:
            wh = g.battery.capacity_wh
            if wh is None and c.profile.battery is not None:
                wh = c.profile.battery.capacity_wh
            if wh is None:
                raise InputError(
                    f"profile '{c.profile.name}' has no battery: give capacity_wh",
                    file=loaded.label, key=f"fleet[{i}].battery.capacity_wh",
                )
            cap = wh * 3600.0
            d.battery_capacity_j = cap
            d.battery_level_j = cap * g.battery.initial
            d.battery_floor_j = cap * g.battery.floor
            rc = g.battery.recharge
            if rc is not None:
                d.recharge = Recharge(rc.period_s, rc.start_s, rc.duration_s, rc.power_w)
        dynamics[c.client_id] = d
    return availability, dynamics
