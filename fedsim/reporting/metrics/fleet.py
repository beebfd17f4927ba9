"""Fleet composition: how many clients, and the scenario's fleet groups with their class."""

from __future__ import annotations

from typing import Any

from fedsim.reporting.run import Run


def fleet_size(run: Run) -> int:
    """Clients in the fleet: the summary's count, else the scenario's, else those seen."""
    n = run.summary.get("clients")
    if isinstance(n, int | float) and n > 0:
        return int(n)
    fleet = run.scenario.get("fleet") or []
    total = sum(int(g.get("count", 0)) for g in fleet if isinstance(g, dict))
    return total or len(set(run.clients["client_id"].tolist()))


def fleet_groups(run: Run) -> list[dict[str, Any]]:
    """The scenario's fleet groups, each with the device class its clients reported.

    The class comes from clients.csv (the scenario names only a profile), so a group whose
    clients were never selected has an empty class.
    """
    group_class: dict[str, str] = {}
    c = run.clients
    for g, k in zip(c["group"], c["device_class"], strict=True):
        group_class.setdefault(str(g), str(k))
    rows = []
    for g in run.scenario.get("fleet") or []:
        if not isinstance(g, dict):
            continue
        label = str(g.get("name") or g.get("profile") or "?")
        rows.append({
            "group": label,
            "profile": str(g.get("profile", "")),
            "device_class": group_class.get(label, ""),
            "count": g.get("count"),
            "budget_bits": _budget_text(g.get("budget_bits"), run.scenario.get("budget_bits")),
            "link": g.get("link") or "(profile default)",
            "override": g.get("override") or {},
        })
    return rows


def _budget_text(own: Any, default: Any) -> str:
    """A group's budget as written: its own, else the scenario's; ``auto`` when derived."""
    b = default if own is None else own
    if b is None:
        b = 8  # scenarios written before the scenario-level default existed
    if b == "auto" or isinstance(b, dict):
        return "auto"
    return f"{b:g}" if isinstance(b, int | float) else str(b)
