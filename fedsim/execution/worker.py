"""What runs inside an executor: a per-process context built once, then one task at a time.

Like pfl-research's workers, each process loads the dataset once (pool initializer), keeps
one model and one algorithm object, and receives only the global state, the client's indices
and a seed per task. The torch thread count is fixed here for every executor, because a
reduction's summation order (and so the low bits of the result) follows it.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from fedsim.algorithms.base import Algorithm, ClientTask, ClientUpdate, TrainHyper


@dataclass(frozen=True)
class WorkerSetup:
    """Plain, picklable recipe for a worker's context."""

    dataset: str
    data_root: str | None
    data_seed: int
    data_options: dict[str, Any]
    model_name: str
    model_options: dict[str, Any]
    algorithm: str
    hyper: TrainHyper
    algo_params: dict[str, Any]
    threads: int
    device: str = "cpu"


class WorkerContext:
    """Dataset tensors, one model and one algorithm instance, built once per process."""

    def __init__(self, setup: WorkerSetup, train: Any = None) -> None:
        from fedsim.algorithms.params import params_schema
        from fedsim.algorithms.registry import algorithm_class
        from fedsim.data import load_dataset
        from fedsim.models import build_model, model_spec

        configure_torch(setup.threads)
        self.setup = setup
        self.device = torch.device(setup.device)
        if train is None:  # a worker process loads its own copy once; inline reuses the run's
            train, _test = load_dataset(
                setup.dataset, root=setup.data_root, seed=setup.data_seed,
                options=setup.data_options,
            )
        self.x = torch.from_numpy(train.x).to(self.device)
        self.y = torch.from_numpy(train.y).to(self.device)
        self.model: nn.Module = build_model(
            setup.model_name, in_channels=train.channels, num_classes=train.num_classes,
            image_size=train.image_size, options=setup.model_options,
        ).to(self.device)
        spec = model_spec(
            self.model, name=setup.model_name,
            input_shape=(train.channels, train.image_size, train.image_size),
        )
        params = params_schema(setup.algorithm).model_validate(setup.algo_params)
        self.algorithm: Algorithm = algorithm_class(setup.algorithm)(setup.hyper, params, spec)

    def run(self, task: ClientTask) -> ClientUpdate:
        _fault_injection(task)
        idx = torch.as_tensor(task.indices, dtype=torch.long, device=self.device)
        # guard: any stray draw from the global generator is seeded too. On the CPU only
        # the CPU generator matters; torch.manual_seed also queues a seeding of every CUDA
        # device with a captured stack trace (1.3 ms a task on this CUDA build of torch,
        # 9 % of a 2-step cross-device task), for the same CPU draws.
        if self.device.type == "cpu":
            torch.default_generator.manual_seed(task.seed)
        else:
            torch.manual_seed(task.seed)
        update = self.algorithm.client_update(self.model, task, self.x[idx], self.y[idx])
        if self.device.type != "cpu":  # results cross processes and are averaged on the CPU
            update.state = {k: v.cpu() for k, v in update.state.items()}
        return update


def _fault_injection(task: ClientTask) -> None:
    """Test hook: ``FEDSIM_FAULT=kill:<round>:<client>:<marker file>`` SIGKILLs the worker
    the first time it runs that task (the marker file records that it happened), so tests can
    check that a dead worker is replaced and its task retried. ``fail:...`` raises instead,
    every time (a deterministic failure)."""
    import os

    spec = os.environ.get("FEDSIM_FAULT")
    if not spec:
        return
    kind, rnd, cid, marker = spec.split(":", 3)
    if (task.round, task.client_id) != (int(rnd), int(cid)):
        return
    if kind == "fail":
        raise RuntimeError("injected deterministic failure")
    if kind == "kill" and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write("killed\n")
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def configure_torch(threads: int) -> None:
    """Same numerics in every executor: fixed thread count, deterministic algorithms."""
    torch.set_num_threads(threads)
    # The public torch.use_deterministic_algorithms also sets torch.compile's inductor flag,
    # importing torch._inductor (1.8 s at every start of a run or worker). fedsim never
    # compiles, so only the eager flag below matters; the public call is the fallback.
    set_eager = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_eager is None:  # pragma: no cover - other torch builds
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        set_eager(True, warn_only=True)


_CONTEXT: WorkerContext | None = None

#: The run's training set, left here by the parent just before it forks its workers: a
#: forked worker finds it in the memory it shares with the parent and skips loading its own
#: copy (a spawned worker starts with None and loads it).
_INHERITED: tuple[WorkerSetup, Any] | None = None


def leave_for_forked_workers(setup: WorkerSetup | None, train: Any) -> None:
    """Leave ``train`` for the workers forked from here next (None: forget it)."""
    global _INHERITED
    _INHERITED = None if setup is None else (setup, train)


def init_worker(setup: WorkerSetup) -> None:
    """Pool initializer: tie this process's life to the run's, build its context once."""
    from fedsim.execution.lifetime import die_with_parent

    global _CONTEXT
    die_with_parent()
    train = _INHERITED[1] if _INHERITED is not None and _INHERITED[0] == setup else None
    _CONTEXT = WorkerContext(setup, train)


def run_task(task: bytes) -> bytes:
    """Entry point of a pool task: a :func:`pack`-ed task in, its packed update out."""
    if _CONTEXT is None:  # pragma: no cover - initializer always runs first
        raise RuntimeError("worker context not initialised")
    return pack(_CONTEXT.run(unpack(task)))


def pack(obj: Any) -> bytes:
    """A task or an update as one pickled byte string, to cross a process boundary.

    Why: handed to ``multiprocessing`` as objects, every tensor of a model state is moved
    into its own shared-memory segment whose file descriptor is sent over a socket and
    mapped on the other side (torch's ``ForkingPickler`` reductions): about 10 ms per task
    and answer for the small CNN, measured, and training on the mapped tensors ran 10 %
    slower. Plainly pickled, a tensor's storage goes through ``torch.save`` and
    ``torch.load`` one by one (1.6 ms for the small CNN's state, there and back). Here a CPU
    tensor travels as the numpy array over the same memory (0.15 ms), and comes back as
    the tensor over the unpickled array: same dtype, shape and values.
    """
    buf = io.BytesIO()
    _TensorPickler(buf, protocol=5).dump(obj)
    return buf.getvalue()


def unpack(data: bytes) -> Any:
    return pickle.loads(data)


def _tensor_from_numpy(array: Any) -> torch.Tensor:
    return torch.from_numpy(array)


def _numpy_ok(t: torch.Tensor) -> bool:
    return (t.device.type == "cpu" and t.layout == torch.strided and not t.requires_grad
            and t.dtype in _NUMPY_DTYPES)


_NUMPY_DTYPES = {torch.float64, torch.float32, torch.float16, torch.int64, torch.int32,
                 torch.int16, torch.int8, torch.uint8, torch.bool}


class _TensorPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is torch.Tensor and _numpy_ok(obj):
            return _tensor_from_numpy, (obj.numpy(),)
        return NotImplemented
