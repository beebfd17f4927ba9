"""One-line descriptions of a run's setup: method, data, model, fleet, selection, rounds.

Shared by the single-run scenario table, the comparison's "what was run" table and the
comparison's labels, so a run is described in the same words everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fedsim.reporting import metrics, style
from fedsim.reporting.run import Run


def dataset_name(scenario: dict[str, Any]) -> str:
    return str((scenario.get("data") or {}).get("dataset", "?"))


def model_name(run: Run) -> str:
    """The model's name as the run recorded it, else as the scenario asked for it."""
    m = run.summary.get("model") or {}
    return f"{m.get('name') or (run.scenario.get('model') or {}).get('name', '?')}"


def dataset_text(sc: dict[str, Any]) -> str:
    text = dataset_name(sc)
    part = (sc.get("data") or {}).get("partition") or {}
    if isinstance(part, dict) and part:
        kind = part.get("kind") or part.get("name") or part.get("method")
        alpha = part.get("alpha")
        bits = [str(kind)] if kind else []
        if alpha is not None:
            bits.append(f"alpha = {alpha}")
        if bits:
            text += f" ({', '.join(bits)})"
    return text


def model_text(run: Run) -> str:
    m = run.summary.get("model") or {}
    extra = []
    if m.get("params"):
        extra.append(f"{int(m['params']):,} parameters")
    if m.get("quantized_layers"):
        extra.append(f"{m['quantized_layers']} quantized layers")
    return model_name(run) + (f" ({', '.join(extra)})" if extra else "")


_SHARED_ALG_KEYS = ("lr", "momentum", "weight_decay", "local_epochs", "batch_size")


def algorithm_text(run: Run) -> str:
    """The method and its settings: the common training keys first, then its own."""
    a = run.scenario.get("algorithm") or {}
    keys = [k for k in _SHARED_ALG_KEYS if k in a]
    own = [k for k in a if k not in (*_SHARED_ALG_KEYS, "name", "lr_milestones", "lr_gamma")]
    parts = [f"{k} = {a[k]}" for k in (*keys, *own)]
    if a.get("lr_milestones"):
        parts.append(f"lr x{a.get('lr_gamma')} at rounds {a['lr_milestones']}")
    return f"{style.method_name(run.algorithm)}" + (f": {', '.join(parts)}" if parts else "")


def selection_text(run: Run) -> str:
    s = run.scenario.get("selection") or {}
    n = metrics.fleet_size(run)
    if s.get("per_round"):
        who = f"{s['per_round']} of {n} clients per round"
    elif s.get("fraction"):
        who = f"fraction {s['fraction']} of {n} clients per round"
    else:
        who = f"all {n} clients every round"
    dl = s.get("deadline_s")
    return who + (f", deadline {style.fmt_time(float(dl))}" if dl else ", no deadline")


def rounds_text(run: Run) -> str:
    planned = run.planned_rounds
    done = run.n_rounds
    return f"{done} completed" + (f" of {planned} planned" if planned is not None else "")


def fleet_text(run: Run) -> str:
    groups = metrics.fleet_groups(run)
    return ", ".join(f"{g['count']}x {g['group']}" for g in groups) or "?"


def fleet_line(run: Run) -> str:
    return f"{metrics.fleet_size(run)} clients: {fleet_text(run)}"


#: The setup rows both report kinds show, in order: (row name, text of a run).
SETUP_FIELDS: list[tuple[str, Callable[[Run], str]]] = [
    ("scenario", lambda r: r.scenario_name),
    ("method", algorithm_text),
    ("data", lambda r: dataset_text(r.scenario)),
    ("model", model_text),
    ("fleet", fleet_line),
    ("selection", selection_text),
    ("rounds", rounds_text),
]
