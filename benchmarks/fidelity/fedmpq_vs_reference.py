"""Federated differential: fedsim's FedMPQ against the authors' code, round by round.

    python benchmarks/fidelity/fedmpq_vs_reference.py --reference /path/to/checkout \
        [--method fedmpq|aqfl|fpq8] [--seed 1] [--rounds 10] [--mode free|lockstep] \
        [--out results/fidelity]

``--reference`` is a checkout of the authors' public code
(CityChan/Federated-Mixed-Precision-Quantization, commit f4e99985). It is imported as is, in
this process; the only changes are made at run time and from outside: CUDA calls become no-ops
(this machine has no GPU), the progress bar and ipdb imports are stubbed, and the stem conv
takes 1 channel (Fashion-MNIST). fedsim never imports any of it.

Both sides get the same work:

* the same data: Fashion-MNIST, first 6,000 / 2,000 images, the split file, x/255 then
  (x - 0.2860) / 0.3530;
* the same initial weights: every reference client draws its own init (as the code does);
  fedsim's client n starts round 1 from client n's de-quantized initial model;
* the same batches: fedsim's order (``randperm`` from the task's seed, last partial batch
  dropped) is fed to the reference client through its train loader;
* the same random stream for the reference rule's Bernoulli carry: the global torch RNG of the
  reference is set to the state fedsim's task generator has when its training starts.

Modes: ``free`` runs both federations independently and compares what each produces;
``lockstep`` starts fedsim's clients every round from the reference's global model and
allocation, so each round's difference is that round's own (nothing compounds).

Printed and written to ``OUT/<method>-s<seed>-<mode>.json`` per round: each client's bits
before/after its local reduction, the share of quantized weights whose value differs after
local training, the largest difference of the float entries (BN, scales, 1x1 convs, FC bias),
the global models' difference, the next round's allocations and both global accuracies (eval
mode, 16-bit activations, the same test batches).
"""

from __future__ import annotations

import argparse
import builtins
import copy
import json
import math
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fedsim.algorithms.base import ClientInfo, ClientTask, TrainHyper  # noqa: E402
from fedsim.algorithms.params import BitPlaneParams  # noqa: E402
from fedsim.algorithms.registry import algorithm_class  # noqa: E402
from fedsim.data import load_dataset  # noqa: E402
from fedsim.data.splitfile import read_split  # noqa: E402
from fedsim.models import build_model, model_spec  # noqa: E402
from fedsim.runner.ports import Evaluator  # noqa: E402
from fedsim.seeding import derive_seed  # noqa: E402

BUDGETS = [2, 2, 4, 4, 4, 6, 6, 6, 8, 8]
MEAN, STD = 0.2860, 0.3530
DEFAULT_SPLIT = ROOT / "scenarios" / "reference" / "fmnist_split_6k_a05.json"


# -- the authors' code, imported from outside --------------------------------------------------
def import_reference(path: Path) -> dict[str, Any]:
    """Import the reference modules with CUDA, the progress bar and ipdb stubbed out."""
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]

    class Bar:  # progress.bar.Bar
        suffix = ""

        def __init__(self, *a: Any, **k: Any) -> None: ...
        def next(self) -> None: ...
        def finish(self) -> None: ...

    progress = types.ModuleType("progress")
    bar = types.ModuleType("progress.bar")
    bar.Bar = Bar  # type: ignore[attr-defined]
    progress.bar = bar  # type: ignore[attr-defined]
    sys.modules.setdefault("progress", progress)
    sys.modules.setdefault("progress.bar", bar)
    sys.modules.setdefault("ipdb", types.ModuleType("ipdb"))
    sys.path.insert(0, str(path))
    real_print = builtins.print
    import models.bit as bit  # type: ignore[import-not-found]
    import models.resnet as resnet  # type: ignore[import-not-found]

    class StemConv(bit.BitConv2d):  # the one change: a 1-channel stem
        def __init__(self, in_channels: int, *a: Any, **k: Any) -> None:
            super().__init__(1 if in_channels == 3 else in_channels, *a, **k)

    resnet.BitConv2d = StemConv
    import server.server_aqfl as server_aqfl  # type: ignore[import-not-found]
    import server.server_fedmpq as server_fedmpq  # type: ignore[import-not-found]
    import utils.eval as ueval  # type: ignore[import-not-found]

    return {"bit": bit, "server_fedmpq": server_fedmpq, "server_aqfl": server_aqfl,
            "eval": ueval, "print": real_print}


class RoundLoader:
    """Stands in for a client's DataLoader: yields the batches set for the current round."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.dataset = range(len(y))  # the code reads len(loader.dataset)
        self.batches: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):  # type: ignore[no-untyped-def]
        for idx in self.batches:
            yield self.x[idx], self.y[idx]


@torch.no_grad()
def ref_float_state(model: nn.Module, bit: Any) -> dict[str, torch.Tensor]:
    """The float state the code uploads (what its ``to_float`` computes, without touching the
    model: its convs cannot be deep-copied), keys renamed to fedsim's."""
    out: dict[str, torch.Tensor] = {}
    bitmods = {name: m for name, m in model.named_modules()
               if isinstance(m, bit.BitConv2d | bit.BitLinear)}
    for key, v in model.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        m = bitmods.get(prefix)
        if m is None or not m.bin:
            out[key] = v.detach().clone()
            continue
        if leaf == "bweight":
            w = torch.sum(torch.mul(m.bweight, m.exps), dim=-1)
            out[f"{prefix}.weight"] = (torch.mul(w, m.wsign) * m.scale).float()
        elif leaf == "bbias":
            b = torch.sum(torch.mul(m.bbias, m.bexps), dim=1)
            out[f"{prefix}.bias"] = torch.mul(b, m.bsign) * m.biasscale
    return {k.replace("downsample", "shortcut"): v for k, v in out.items()}


def ref_bits(model: nn.Module, bit: Any) -> list[int]:
    return [int(m.Nbits) for m in model.modules() if isinstance(m, bit.BitConv2d | bit.BitLinear)]


def to_ref_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.replace("shortcut", "downsample"): v for k, v in state.items()}


# -- comparisons -----------------------------------------------------------------------------
def compare_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                   weight_keys: list[str]) -> dict[str, float]:
    """Share of quantized weights that differ (by more than 1e-5 of the layer's largest
    weight: rounding noise of two decodes), and the largest relative difference elsewhere."""
    differ = total = 0
    for k in weight_keys:
        tol = 1e-5 * float(b[k].abs().max()) + 1e-12
        differ += int(((a[k] - b[k]).abs() > tol).sum())
        total += b[k].numel()
    worst, worst_key = 0.0, ""
    for k, v in b.items():
        if k in weight_keys or not torch.is_floating_point(v) or k not in a:
            continue
        d = float((a[k].float() - v.float()).abs().max() / (v.float().abs().max() + 1e-12))
        if d > worst:
            worst, worst_key = d, k
    return {"weights_differ": differ / max(1, total), "float_max_rel": worst,
            "float_worst_key": worst_key}


def bitstr(bits: list[int]) -> str:
    return "".join(str(b) for b in bits)


# -- one client, step by step ----------------------------------------------------------------------
def raw_mismatches(q: nn.Module, rmodel: nn.Module, bit: Any) -> list[str]:
    """Names of the tensors that are not *bit-equal* between fedsim's quantized client and the
    code's: every layer's planes (fedsim LSB-first ``[b, ...]``, the code MSB-last
    ``[..., b]``), sign and scale, the bias planes, and every other parameter and buffer."""
    from fedsim.quant import quantized_layers

    bad: list[str] = []
    rmods = [m for m in rmodel.modules() if isinstance(m, bit.BitConv2d | bit.BitLinear)]
    for (name, ql), rm in zip(quantized_layers(q), rmods, strict=True):
        pairs = [("planes", ql.planes, rm.bweight.flip(-1).movedim(-1, 0)),
                 ("sign", ql.sign, rm.wsign.reshape(ql.sign.shape)),
                 ("scale", ql.scale.reshape(1), rm.scale.reshape(1))]
        if ql.bias_planes is not None:
            pairs += [("bias_planes", ql.bias_planes, rm.bbias.flip(-1).t()),
                      ("bias_scale", ql.bias_scale.reshape(1), rm.biasscale.reshape(1))]
        bad += [f"{name}.{k}" for k, a, b in pairs
                if a.shape != b.shape or not torch.equal(a.detach(), b.detach())]
    rstate = {k.replace("downsample", "shortcut"): v for k, v in rmodel.state_dict().items()}
    for key, v in q.state_dict().items():
        if (key in rstate and not key.endswith(("planes", "sign", "scale"))
                and not torch.equal(v.float(), rstate[key].float())):
            bad.append(key)
    return bad


def single_client(args: argparse.Namespace, ref: dict[str, Any], rserver: Any,
                  starts: dict[int, dict[str, torch.Tensor]], loaders: list[RoundLoader],
                  model: nn.Module, budgets: list[int]) -> int:
    """Train one client of the code and fedsim's client pieces side by side from the same
    start, batches and random stream; exit status 0 when every step is bit-identical."""
    import importlib

    import torch.nn.functional as F

    from fedsim.quant import BitPlaneSGD, group_lasso, reduce_precision, to_quantized

    bit, cid = ref["bit"], args.single_client
    rc = rserver.clients[cid]
    m = copy.deepcopy(model)
    m.load_state_dict(starts[cid])
    q = to_quantized(m, [budgets[cid]] * 20, act_bits=4, bias_planes=True)
    reduce_precision(q, 0.0)  # the code's threshold-0 reduction at init
    loader = loaders[cid]
    gen = torch.Generator().manual_seed(derive_seed(args.seed, "train", 0, cid))
    order = torch.randperm(len(loader.y), generator=gen)
    opt = BitPlaneSGD(q, lr=args.lr, momentum=0.9, rule="reference", generator=gen)
    torch.set_rng_state(gen.get_state())
    code_opt = importlib.import_module("QuantOptimizer").QuantOptimizer(
        rc.model, rc.model.parameters(), lr=args.lr, momentum=0.9, weight_decay=0.0)
    total_params, crit = rc.model.total_param(), nn.CrossEntropyLoss()
    failures = 0
    steps = min(args.steps, len(loader.y) // 64)  # one local epoch at most
    for step in range(steps):
        idx = order[step * 64:(step + 1) * 64]
        xb, yb = loader.x[idx], loader.y[idx]
        rc.model.train()
        out = rc.model(xb)
        loss = crit(out, yb)
        reg: Any = 0.0
        for mod in rc.model.modules():
            if isinstance(mod, bit.BitConv2d | bit.BitLinear):
                reg = mod.L1reg(reg)
        code_opt.zero_grad()
        (loss + 1e-3 * reg / total_params).backward()
        code_opt.step()
        q.train()
        out2 = q(xb)
        loss2 = F.cross_entropy(out2, yb)
        opt.zero_grad(set_to_none=True)
        (loss2 + group_lasso(q, 1e-3)).backward()
        opt.step()
        bad = raw_mismatches(q, rc.model, bit)
        same_logits = torch.equal(out.detach(), out2.detach())
        failures += (not same_logits) or bool(bad)
        print(f"client {cid} step {step}: loss {float(loss.detach()):.6f} / "
              f"{float(loss2.detach()):.6f}, logits "
              f"{'equal' if same_logits else 'DIFFER'}, tensors not bit-equal after the step: "
              f"{bad[:4] if bad else 'none'}{' ...' if len(bad) > 4 else ''}", flush=True)
    # The end of the round: precision reduction, then the upload (the float state).
    from fedsim.quant import float_state_dict

    builtins.print = lambda *a, **k: None
    try:
        rc.model.pruning(threshold=2.0, drop=True)
    finally:
        builtins.print = ref["print"]
    reduce_precision(q, 0.02)
    bad = raw_mismatches(q, rc.model, bit)
    up, rup = float_state_dict(q), ref_float_state(rc.model, bit)
    upload_bad = [k for k, v in up.items() if torch.is_floating_point(v) and k in rup
                  and not torch.equal(v, rup[k].to(v.dtype))]
    print(f"client {cid} after reduction: bits {bitstr(ref_bits(rc.model, bit))}, tensors not "
          f"bit-equal {bad[:4] if bad else 'none'}; uploaded tensors not bit-equal "
          f"{upload_bad[:4] if upload_bad else 'none'}", flush=True)
    failures += bool(bad) + bool(upload_bad)
    return 1 if failures else 0


# -- the run -----------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", type=Path, required=True, help="checkout of the authors' code")
    ap.add_argument("--data-root", default=None,
                    help="Fashion-MNIST idx folder (default: Debian's)")
    ap.add_argument("--split", type=Path, default=DEFAULT_SPLIT)
    ap.add_argument("--method", choices=("fedmpq", "aqfl", "fpq8"), default="fedmpq")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--mode", choices=("free", "lockstep"), default="free")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--single-client", type=int, default=None, metavar="CID",
                    help="only train client CID for --steps steps on both sides, step by "
                         "step; exit 1 unless every step is bit-identical")
    ap.add_argument("--steps", type=int, default=10, help="at most one local epoch")
    ap.add_argument("--noise-floor", action="store_true",
                    help="also train every client from a start one ulp away (costs 1.5x)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "fidelity")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="fedsim method parameter, e.g. --set update_rule=paper")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)

    ref = import_reference(args.reference.resolve())
    bit = ref["bit"]
    budgets = [8] * 10 if args.method == "fpq8" else BUDGETS

    # Data, split, normalisation: fedsim's loaders feed both sides.
    train, test = load_dataset("fashion_mnist", root=args.data_root, options={
        "train_subset": 6000, "test_subset": 2000,
        "normalize": {"mean": [MEAN], "std": [STD]}})
    parts, test_idx = read_split(args.split, n_clients=10, n_train=len(train.y),
                                 n_test=len(test.y), file=str(args.split), key="split")
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    if test_idx is not None:
        test = type(test)(x=test.x[test_idx], y=test.y[test_idx], num_classes=10,
                          name=test.name)

    # The reference federation (its clients draw their own inits from the global RNG).
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    rargs = {"n_classes": 10, "lr": args.lr, "momentum": 0.9, "weight_decay": 5e-4,
             "lambda": 1e-3, "thre": 2.0, "local_epochs": 1, "schedule": [], "gamma": 0.1,
             "epochs": args.rounds, "n_clients": 10, "sampling_rate": 1.0,
             "budgets": budgets, "device": ["0"]}
    loaders = [RoundLoader(x[torch.as_tensor(p)], y[torch.as_tensor(p)]) for p in parts]
    server_mod = ref["server_aqfl"] if args.method in ("aqfl", "fpq8") else ref["server_fedmpq"]
    server_cls = server_mod.Server_AQFL if args.method in ("aqfl", "fpq8") \
        else server_mod.Server_FedMPQ
    # Record each bit layer's float init as the code binarizes it (its last ``ini2bit``):
    # fedsim binarizes exactly that tensor, so planes, signs and scales start bit-equal.
    inits: dict[int, torch.Tensor] = {}
    originals = {cls: cls.ini2bit for cls in (bit.BitConv2d, bit.BitLinear)}

    def recording(orig: Any) -> Any:
        def ini2bit(self: Any, ini: torch.Tensor, b: bool = False) -> Any:
            inits[(id(self), b)] = ini.detach().clone()
            return orig(self, ini, b) if b else orig(self, ini)
        return ini2bit

    for cls, orig in originals.items():
        cls.ini2bit = recording(orig)
    builtins.print = lambda *a, **k: None  # the code prints every step
    try:
        rserver = server_cls(rargs, loaders, None)
    finally:
        builtins.print = ref["print"]
        for cls, orig in originals.items():
            cls.ini2bit = orig

    # fedsim's side, built from its own classes.
    model = build_model("resnet20", in_channels=1, num_classes=10, image_size=28,
                        options={"shortcut": "B"})
    spec = model_spec(model, name="resnet20", input_shape=(1, 28, 28))
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value) if value[:1] in "0123456789-[{tfn" else value
    params = BitPlaneParams(**{"update_rule": "reference", "allocation": "reference",
                               "aggregation": "uniform", "init": "common", "lam": 1e-3,
                               "bias": "planes",
                               "epsilon": 0.02, "eval_act_bits": 16, **overrides})
    hyper = TrainHyper(lr=args.lr, momentum=0.9, weight_decay=0.0, batch_size=64,
                       local_epochs=1)
    algo = algorithm_class(args.method)(hyper, params, spec)
    algo.setup(model, [ClientInfo(i, float(budgets[i]), len(parts[i])) for i in range(10)])
    evaluator = Evaluator(algo.eval_model(model), test.x, test.y, 500)
    weight_keys = [f"{name}.weight" for name in
                   [n for n, m in model.named_modules()
                    if isinstance(m, nn.Conv2d | nn.Linear) and not getattr(m, "fedsim_float", 0)]]
    starts = {}
    for i, c in enumerate(rserver.clients):
        st = ref_float_state(c.model, bit)
        for name, m in c.model.named_modules():
            if isinstance(m, bit.BitConv2d | bit.BitLinear):
                for leaf, b in (("weight", False), ("bias", True)):
                    if (id(m), b) in inits and f"{name}.{leaf}" in st:
                        st[f"{name}.{leaf}"] = inits[(id(m), b)].reshape(
                            st[f"{name}.{leaf}"].shape)
        starts[i] = st
    if args.single_client is not None:
        sys.exit(single_client(args, ref, rserver, starts, loaders, model, budgets))

    # Hooks on the reference: batches + RNG in, states out.
    current: dict[str, Any] = {}
    ref_client_cls = type(rserver.clients[0])
    orig_local = ref_client_cls.local_training

    def local_training(self: Any, global_epoch: int) -> None:
        r, cid = current["round"], self.idx
        seed = derive_seed(args.seed, "train", r, cid)
        gen = torch.Generator().manual_seed(seed)
        n = len(self.trainloader.y)
        order = torch.randperm(n, generator=gen)
        self.trainloader.batches = [order[s * 64:(s + 1) * 64] for s in range(n // 64)]
        torch.set_rng_state(gen.get_state())
        rec = current["clients"].setdefault(cid, {})
        rec["seed"] = seed
        rec["ref_bits_start"] = ref_bits(self.model, bit)
        rec["ref_start"] = ref_float_state(self.model, bit)
        orig_local(self, global_epoch)
        rec["ref_bits_end"] = ref_bits(self.model, bit)
        rec["ref_end"] = ref_float_state(self.model, bit)

    ref_client_cls.local_training = local_training

    def global_acc(global_model: nn.Module, _loader: Any) -> tuple[float, float]:
        current["ref_global"] = {k.replace("downsample", "shortcut"): v.detach().clone()
                                 for k, v in global_model.state_dict().items()}
        return 0.0, 0.0

    server_mod.global_acc = global_acc

    def ref_round() -> None:
        """One round of the reference server: its own ``train`` loop with one epoch (the
        loop's epoch counter only feeds an empty lr schedule and its prints)."""
        saved = rserver.args["epochs"]
        rserver.args["epochs"] = 1
        builtins.print = lambda *a, **k: None
        # The code trains and sums its clients in the order np.random.choice draws; the order
        # changes nothing but the float summation of the average, so the harness makes it
        # the client order, which fedsim uses (a result independent of worker timing).
        choice = np.random.choice
        np.random.choice = lambda a, size=None, replace=True, p=None: (  # type: ignore[assignment]
            np.arange(a)[:size] if not replace and p is None else choice(a, size, replace, p))
        try:
            rserver.train()
        finally:
            builtins.print = ref["print"]
            np.random.choice = choice  # type: ignore[assignment]
            rserver.args["epochs"] = saved

    out_rows = []
    fedsim_state: dict[str, torch.Tensor] = {}
    prev_ref_global: dict[str, torch.Tensor] = {}
    for r in range(args.rounds):
        current = {"clients": {}, "round": r}
        ref_round()
        ref_alloc = {i: ref_bits(c.model, bit) for i, c in enumerate(rserver.clients)}
        # fedsim's round from the same starts (round 1) or its own / the reference's global.
        if r == 0:
            downlink = {i: tuple([budgets[i]] * spec.n_quantized) for i in range(10)}
        elif args.mode == "lockstep":
            downlink = {i: tuple(current["clients"][i]["ref_bits_start"]) for i in range(10)}
        else:
            downlink = algo.downlink_bits(r, list(range(10)))
        updates = []
        rows = []
        for cid in range(10):
            rc = current["clients"][cid]
            if r == 0:
                start = {k: v for k, v in starts[cid].items()}
            elif args.mode == "lockstep":
                start = prev_ref_global
            else:
                start = fedsim_state
            task = ClientTask(round=r, client_id=cid, bits=downlink[cid], seed=rc["seed"],
                              lr=args.lr, indices=parts[cid], global_state=start,
                              budget_bits=float(budgets[cid]))
            idx = torch.as_tensor(parts[cid])
            torch.manual_seed(rc["seed"])
            u = algo.client_update(model, task, x[idx], y[idx])
            updates.append(u)
            cmp_ = compare_states(u.state, rc["ref_end"], weight_keys)
            if args.noise_floor:
                # The same client from a start one float ulp away (the stem BN weights): how
                # far two runs part from float noise alone, through 4-bit activations and
                # power-of-two steps. A fedsim-vs-reference difference of this size is noise.
                nudged = dict(start)
                nudged["bn1.weight"] = torch.nextafter(start["bn1.weight"],
                                                       torch.tensor(float("inf")))
                task_n = ClientTask(round=r, client_id=cid, bits=downlink[cid],
                                    seed=rc["seed"], lr=args.lr, indices=parts[cid],
                                    global_state=nudged, budget_bits=float(budgets[cid]))
                torch.manual_seed(rc["seed"])
                un = algo.client_update(model, task_n, x[idx], y[idx])
                floor = compare_states(un.state, u.state, weight_keys)
                cmp_["noise_floor_weights_differ"] = floor["weights_differ"]
            rows.append({
                "client": cid,
                "bits_down": {"fedsim": bitstr(list(downlink[cid])),
                              "reference": bitstr(rc["ref_bits_start"])},
                "bits_up": {"fedsim": bitstr(list(u.bits_up)),
                            "reference": bitstr(rc["ref_bits_end"])},
                **cmp_,
            })
        algo.aggregate(r, updates)
        fedsim_state = algo.global_state
        prev_ref_global = current["ref_global"]
        gcmp = compare_states(fedsim_state, current["ref_global"], weight_keys)
        gcmp["tensors_not_bit_equal"] = [
            k for k, v in fedsim_state.items()
            if torch.is_floating_point(v) and k in current["ref_global"]
            and not torch.equal(v, current["ref_global"][k].to(v.dtype))]
        acc_f = evaluator(fedsim_state).accuracy
        acc_r = evaluator({k: v for k, v in current["ref_global"].items()
                           if k in fedsim_state}).accuracy
        next_f = algo.downlink_bits(r + 1, list(range(10)))
        row = {"round": r + 1, "acc_fedsim": acc_f, "acc_reference": acc_r,
               "global": gcmp, "clients": rows,
               "next_alloc": {cid: {"fedsim": bitstr(list(next_f[cid])),
                                    "reference": bitstr(ref_alloc[cid])} for cid in (0, 2, 5, 8)}}
        out_rows.append(row)
        worst = max(rows, key=lambda q: q["weights_differ"])
        if args.noise_floor:
            fl = [q["noise_floor_weights_differ"] for q in rows]
            dv = [q["weights_differ"] for q in rows]
            print(f"   weights differ per client, fedsim vs reference: "
                  f"{' '.join(f'{100 * d:.1f}' for d in dv)} %\n"
                  f"   the same, fedsim vs fedsim one ulp away:      "
                  f"{' '.join(f'{100 * d:.1f}' for d in fl)} %")
        same_bits = sum(q["bits_up"]["fedsim"] == q["bits_up"]["reference"] for q in rows)
        print(f"round {r + 1:2d}  acc fedsim {100 * acc_f:5.2f}  reference {100 * acc_r:5.2f}  "
              f"| clients' weights differ: max {100 * worst['weights_differ']:5.2f}% "
              f"(client {worst['client']}), float max rel {worst['float_max_rel']:.2e} "
              f"({worst['float_worst_key']}) | bits_up equal {same_bits}/10 "
              f"| global weights differ {100 * gcmp['weights_differ']:5.2f}%, tensors not "
              f"bit-equal {len(gcmp['tensors_not_bit_equal'])} "
              f"{gcmp['tensors_not_bit_equal'][:3]}", flush=True)
        for cid in (0, 2, 5, 8):
            na = row["next_alloc"][cid]
            mark = "==" if na["fedsim"] == na["reference"] else "!="
            print(f"   client {cid}: next {na['fedsim']} {mark} {na['reference']}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.method}-s{args.seed}-{args.mode}.json"
    path.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                "params": params.model_dump(), "rounds": out_rows}, indent=1))
    print(f"wrote {path}")
    if not all(math.isfinite(q["acc_fedsim"]) for q in out_rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
