"""The engine's speed rule: which optimisations a run takes, decided from the device type and the
model's structure alone. It never reads a clock, so the same model, input shape, device and
thread count always get the same choices, and the same seed the same bits, on a quiet machine or
a loaded one, first in a process or later (docs/performance.md has the measurements behind it).

Training step:

* CPU, a model with 2-D convolutions and 4-D inputs: **channels-last** (NHWC) weights, batches
  and optimizer state; every convolution whose output is 1x1 as a **matrix product**
  (:mod:`sftc.engine.linear_conv`); **fused** Adam/SGD. On this project's CPU, batch 64, one
  thread: small CNN 28x28 step 62 ms NHWC against 91 ms NCHW; ResNet-18 28x28 218 ms (NHWC with
  its five layer-4 convolutions as matrix products) against 311 ms; EfficientNet-B0 28x28 203 ms
  against 631 ms; fused Adam 2.6-3.7x faster than the per-tensor update for all three.
* CUDA: **fused** Adam/SGD (``torch.optim``'s documentation orders its implementations fused >
  foreach > for-loop in speed); the contiguous layout and ordinary convolutions (not measured on a GPU
  in this project, so not taken: cuDNN chooses its own algorithms).
* Any other device (MPS, ...), or a model without convolutions: the plain path for the layout
  and the convolutions; fused optimizer only on CPU and CUDA.

Teachers' inference passes (:class:`sftc.engine.inference_model.InferenceModel`; batch norm
folded and the exact rewrites on every device):

* CPU, a model with convolutions: NHWC at batch **256**, the 1x1-output convolutions as matrix
  products (measured: NHWC the fastest layout by 1.3x (ResNet-18) to 5x (EfficientNet-B0);
  batch 256 within 5 % of the fastest batch for five of six model/input pairs, 20 % behind 512
  for EfficientNet-B0 at 32x32, where 512 would cost the small CNN 28-78 %);
* CUDA or another device: the contiguous layout at batch 512;
* a pass over fewer than :data:`MIN_ROWS_TO_PREPARE` rows: the model itself at batch 512 (no
  copy to prepare: it would cost more than it saves).

``RULE_VERSION`` changes whenever a choice of this rule changes (it is part of
:func:`sftc.engine.numerics.numerics_identity`, so caches keyed by it notice).
"""
from __future__ import annotations

import torch

RULE_VERSION = 1
INFERENCE_BATCH = 256       # CPU teachers' batch
PLAIN_BATCH = 512           # the plain path's batch (and predict_logits')
MIN_ROWS_TO_PREPARE = 512   # a shorter teacher pass runs the model as it is


def training(device: torch.device, *, conv: bool, linear_candidates: list[str],
             fused_supported: bool) -> dict:
    """The training step's choices: ``channels_last``, ``linear_convs`` (module names),
    ``fused_optimizer``. ``conv``: the model has 2-D convolutions and the inputs are 4-D;
    ``linear_candidates``: its convolutions with a 1x1 output on these inputs."""
    cpu = device.type == "cpu"
    return {"channels_last": cpu and conv,
            "linear_convs": sorted(linear_candidates) if cpu and conv else [],
            "fused_optimizer": fused_supported and device.type in ("cpu", "cuda")}


def inference(device: torch.device, *, conv: bool, linear_candidates: list[str],
              plain: bool = False) -> dict:
    """A teacher pass's choices: ``channels_last``, ``batch``, ``linear_convs``. ``plain``:
    every switch off (the model itself at the plain batch)."""
    if plain or device.type != "cpu" or not conv:
        return {"channels_last": False, "batch": PLAIN_BATCH, "linear_convs": []}
    return {"channels_last": True, "batch": INFERENCE_BATCH,
            "linear_convs": sorted(linear_candidates)}
