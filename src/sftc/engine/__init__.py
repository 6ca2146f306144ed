"""The one training/unlearning loop: device, batching, optimizer, scheduler, progress, history,
NaN guard and timing. Methods only state a batch plan and a per-batch loss."""
from .accel import Accel
from .context import Batch, PlannedBatch, RunContext
from .device import resolve_device
from .inference import FrozenOutputs, predict_logits
from .loop import History, Recipe, run

__all__ = ["Accel", "Batch", "PlannedBatch", "RunContext", "FrozenOutputs", "History", "Recipe",
           "run", "predict_logits", "resolve_device"]
