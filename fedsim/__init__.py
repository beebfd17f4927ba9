"""fedsim: a hardware-aware federated-learning simulator.

Simulates FedMPQ (mixed-precision quantization for FL, Chen & Vikalo, CVPR 2024) and its
baselines on heterogeneous devices: a SimPy engine schedules clients whose real PyTorch
training runs on an executor, while simulated time, energy and memory come from hardware
profiles driven by the per-layer bit-widths.

Importing this package is cheap on purpose (no torch): the CLI must answer `--help` fast.
"""

__version__ = "0.1.0"
