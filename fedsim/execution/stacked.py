"""K copies of one model run as one: stacked weights, per-client batches, plain autograd.

Why not ``torch.func.vmap``: vmap turns a convolution with per-client weights into one
grouped convolution, and grouped convolutions are slow on the CPU (measured: vmap-batched
training of the small CNN ran at 0.72x the speed of one client at a time at 28x28 and
spent 80 % of its time in them at 8x8). Here each layer is run the way that is fast for
stacked clients:

* linear layers: one batched matrix product (``baddbmm``) for all clients;
* convolutions with at most :data:`UNFOLD_MAX_POSITIONS` output positions: unfold the
  inputs once and one batched matrix product; larger ones: one convolution per client
  (at 28x28 the per-client kernels are the fastest form there is on this CPU);
* BatchNorm: one ``batch_norm`` over ``K x C`` channels, so every client normalises with
  its own batch statistics and updates its own running statistics;
* ReLU, pooling, flatten, identity slots: on all clients' samples at once (per-sample
  operations).

The loss is the sum over clients of each client's mean cross-entropy, so the gradient of
every client's slice of a stacked weight is exactly that client's gradient. Which form a
layer takes depends only on its shape, never on timing: a run is reproducible.

A model qualifies when it is built from those layers inside containers that apply their
children in order (``nn.Sequential``, or a module class marked ``sequential_forward =
True``, as :class:`~fedsim.models.cnn.SmallCNN`); :func:`stackable` says why not otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

#: a convolution whose output has at most this many positions per channel runs as
#: unfold + batched matrix product; above, one convolution per client
UNFOLD_MAX_POSITIONS = 64

Params = dict[str, torch.Tensor]
Layer = Callable[[torch.Tensor, Params, Params], torch.Tensor]

_ELEMENTWISE = (nn.ReLU, nn.Identity, nn.MaxPool2d, nn.AvgPool2d)


def _applies_children_in_order(module: nn.Module) -> bool:
    """``nn.Sequential``'s own forward, or a class that says so of the forward it defines
    itself (a subclass overriding it does not inherit the promise)."""
    cls = type(module)
    if isinstance(module, nn.Sequential):
        return cls.forward is nn.Sequential.forward
    return bool(cls.__dict__.get("sequential_forward")) and "forward" in cls.__dict__


def _leaves(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The model's layers in the order its forward applies them, or ValueError."""
    where = prefix.rstrip(".") or "the model"
    if module._forward_hooks or module._forward_pre_hooks:
        raise ValueError(f"{where} has forward hooks")
    children = [(n, m) for n, m in module._modules.items() if m is not None]  # repeats too
    if not children:
        return [(prefix.rstrip("."), module)]
    if not _applies_children_in_order(module):
        raise ValueError(f"{type(module).__name__} ({where}) has its own forward; batched "
                         "training runs layer stacks only")
    out = []
    for name, child in children:
        out += _leaves(child, f"{prefix}{name}.")
    return out


def stackable(model: nn.Module) -> str | None:
    """Why ``model`` cannot be trained stacked (None: it can)."""
    try:
        layers = _leaves(model)
    except ValueError as exc:
        return str(exc)
    params = list(model.parameters())
    if any(not p.requires_grad for p in params):
        return "frozen parameters (requires_grad=False)"
    state = model.state_dict(keep_vars=True)
    if len({id(t) for t in state.values()}) != len(state):
        return "parameters shared between layers"
    for name, m in layers:
        if isinstance(m, nn.Conv2d):
            if m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros" or \
                    isinstance(m.padding, str):
                return f"{name}: grouped, dilated or non-zero-padded convolutions"
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            if not (m.affine and m.track_running_stats) or m.momentum is None:
                return f"{name}: BatchNorm without affine weights or running statistics"
        elif not isinstance(m, (nn.Linear, nn.Flatten, *_ELEMENTWISE)):
            return f"{name}: {type(m).__name__} layers"
    return None


def compile_layers(model: nn.Module) -> list[Layer]:
    """The stacked form of each layer, in order (see the module docstring)."""
    return [_layer(name, m) for name, m in _leaves(model)]


def _layer(name: str, m: nn.Module) -> Layer:
    key = f"{name}." if name else ""
    if isinstance(m, nn.Linear):
        return lambda x, p, b: _linear(x, p[key + "weight"], p.get(key + "bias"))
    if isinstance(m, nn.Conv2d):
        return lambda x, p, b: _conv(x, p[key + "weight"], p.get(key + "bias"), m)
    if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
        return lambda x, p, b: _batch_norm(x, p, b, key, m)
    if isinstance(m, nn.Flatten):
        start, end = m.start_dim, m.end_dim
        return lambda x, p, b: _per_sample(x, lambda t: t.flatten(start, end))
    return lambda x, p, b: _per_sample(x, m)


def _per_sample(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply a per-sample function to ``[K, B, ...]`` as one batch of ``K*B`` samples."""
    k, n = x.shape[:2]
    out = fn(x.reshape(k * n, *x.shape[2:]))
    return out.view(k, n, *out.shape[1:])


def _linear(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if bias is None:
        return torch.bmm(x, w.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, w.transpose(1, 2))


def _conv(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None,
          m: nn.Conv2d) -> torch.Tensor:
    k, n, c, h, wd = x.shape
    kh, kw = m.kernel_size
    (sh, sw), (ph, pw) = m.stride, m.padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    if ho * wo > UNFOLD_MAX_POSITIONS:
        outs = [F.conv2d(x[i], w[i], None if bias is None else bias[i], m.stride, m.padding)
                for i in range(k)]
        return torch.stack(outs)
    cols = F.unfold(x.reshape(k * n, c, h, wd), (kh, kw), padding=(ph, pw), stride=(sh, sw))
    cols = cols.view(k, n, c * kh * kw, ho * wo).transpose(1, 2).reshape(k, c * kh * kw, -1)
    out = torch.bmm(w.reshape(k, w.shape[1], -1), cols)  # [K, out, n*L]
    if bias is not None:
        out = out + bias.unsqueeze(2)
    return out.view(k, -1, n, ho * wo).transpose(1, 2).reshape(k, n, -1, ho, wo)


def _batch_norm(x: torch.Tensor, p: Params, b: Params, key: str,
                m: nn.BatchNorm1d | nn.BatchNorm2d) -> torch.Tensor:
    """Each client's BatchNorm on its own samples: clients become channel groups."""
    k, n, c = x.shape[:3]
    grouped = x.transpose(0, 1).reshape(n, k * c, *x.shape[3:])
    mean, var = b[key + "running_mean"], b[key + "running_var"]
    flat_mean, flat_var = mean.view(-1), var.view(-1)
    out = F.batch_norm(grouped, flat_mean, flat_var, p[key + "weight"].reshape(-1),
                       p[key + "bias"].reshape(-1), True, float(m.momentum or 0.0), m.eps)
    b[key + "num_batches_tracked"].add_(1)
    return out.view(n, k, c, *x.shape[3:]).transpose(0, 1)


def forward(layers: list[Layer], params: Params, buffers: Params,
            x: torch.Tensor) -> torch.Tensor:
    """Logits ``[K, B, classes]`` of K clients' models on their batches ``x`` ``[K, B, ...]``.
    ``buffers`` (running statistics) are updated in place, as in training mode."""
    for layer in layers:
        x = layer(x, params, buffers)
    return x


def client_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each client's mean cross-entropy, ``[K]``."""
    k, n, classes = logits.shape
    ce = F.cross_entropy(logits.reshape(k * n, classes), y.reshape(k * n), reduction="none")
    return ce.view(k, n).mean(1)


def stack_state(tensors: dict[str, torch.Tensor], k: int) -> dict[str, Any]:
    """K copies of each tensor, stacked on a new first axis."""
    return {n: t.detach().unsqueeze(0).repeat(k, *[1] * t.dim()) for n, t in tensors.items()}
