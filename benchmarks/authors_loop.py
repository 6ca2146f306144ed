"""SFTC as the authors' code runs it, written here from the paper's description of that code.

A yardstick for ``benchmarks/speed.py --vs-authors``, not part of the library: it reproduces the
*shape* of the authors' unlearning loop (github.com/vperifan/SFTC-Unlearn, ``sftc_unlearn``) so
that a whole run can be timed beside ``sftc.unlearn(method="sftc")`` on the same model, weights and
samples:

* a per-item ``Dataset`` that returns ``(x, y, pseudo_label)``: each item is converted from the
  stored uint8 image and normalised on its own (as torchvision's ``ToTensor`` + ``Normalize`` do
  per item; without the PIL round trip, which would only make the baseline slower), retain items
  with pseudo-label 0 and forget items with 1, concatenated, and read by a shuffling
  ``DataLoader`` (``num_workers=0``: the comparison is single-threaded; the authors' loader uses
  two worker processes);
* per batch: the frozen teacher's forward pass on the whole batch under ``torch.no_grad()``;
* the biased random generator called on the whole batch, a Python loop over its rows in NumPy:
  ``|N(0, 1)|`` per class, then for c = 0 add U(0.5, 1) to the row's label until it is the largest
  (for 0 < c < 1 a fraction of the batch's forget rows is relabelled first; for c = 1 no bias);
  the result is converted from NumPy (float64) to a tensor;
* cross-entropy over the retain rows (a boolean-mask selection) and the KL term as separate calls:
  ``F.kl_div(log_softmax(student / τ), b·softmax(generator / τ) + (1 - b)·softmax(teacher / τ),
  reduction="batchmean")``;
* ``.item()`` of both terms every batch (the authors log running means), then backward and the
  optimizer step; no scheduler step (constant learning rate, as ``sftc.unlearn``);
* the per-epoch evaluation of the authors' loop (accuracy on retain, val, test and forget after
  every epoch) is switched off.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset


class ItemDataset(Dataset):
    """One sample at a time from an :class:`sftc.data.ImageData` (uint8 [N, C, H, W]):
    ``(normalised float image, label)``."""

    def __init__(self, data, indices: torch.Tensor):
        self.images = data.images.cpu()   # the authors' items are made on the CPU
        self.labels = data.labels.cpu().tolist()
        self.indices = indices.tolist()
        self.mean = torch.tensor(data.mean).view(-1, 1, 1)
        self.std = torch.tensor(data.std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        j = self.indices[i]
        x = self.images[j].float().div(255.0)  # ToTensor
        return (x - self.mean) / self.std, self.labels[j]  # Normalize


class PseudoLabelled(Dataset):
    """Adds a constant pseudo-label b to every item of ``dataset`` (0 retain, 1 forget)."""

    def __init__(self, dataset: Dataset, pseudo_label: int):
        self.dataset = dataset
        self.pseudo_label = pseudo_label

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        x, y = self.dataset[i]
        return x, y, self.pseudo_label


def generator_outputs(labels: torch.Tensor | None, n: int, num_classes: int) -> torch.Tensor:
    """The authors' biased random generator: |N(0, 1)| per class, then a per-row Python loop that
    adds U(0.5, 1) to the label's class until it is the largest (no bias when ``labels`` is
    None)."""
    values = np.abs(np.random.normal(size=(n, num_classes)))
    if labels is not None:
        for i, label in enumerate(labels.tolist()):
            while np.argmax(values[i]) != label:
                values[i, label] += np.random.uniform(0.5, 1)
    return torch.from_numpy(values)


def selective_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                            pseudo: torch.Tensor) -> torch.Tensor:
    mask = pseudo.eq(0)
    if not bool(mask.any()):
        return torch.tensor(0.0, requires_grad=True)
    return F.cross_entropy(logits[mask], labels[mask])


def custom_kl(teacher: torch.Tensor, dummy: torch.Tensor, student: torch.Tensor,
              pseudo: torch.Tensor, tau: float) -> torch.Tensor:
    b = pseudo.unsqueeze(1)
    teacher_soft = F.softmax(teacher / tau, dim=1)
    dummy_soft = F.softmax(dummy / tau, dim=1)
    log_student = F.log_softmax(student / tau, dim=1)
    target = b * dummy_soft + (1 - b) * teacher_soft
    return F.kl_div(log_student, target, reduction="batchmean")


def merged_loader(split, batch_size: int, seed: int) -> DataLoader:
    data = split.data
    merged = ConcatDataset([PseudoLabelled(ItemDataset(data, split.retain), 0),
                            PseudoLabelled(ItemDataset(data, split.forget), 1)])
    return DataLoader(merged, batch_size=batch_size, shuffle=True, num_workers=0,
                      generator=torch.Generator().manual_seed(seed))


def authors_sftc(model: nn.Module, split, epochs: int, lr: float = 5e-4, batch_size: int = 64,
                 tau: float = 1.0, c: float = 0.0, seed: int = 0,
                 device: str = "cpu") -> tuple[nn.Module, list[dict]]:
    """Unlearn ``split.forget`` from a copy of ``model`` the way the authors' loop does.

    On a GPU (``device="cuda"``) as their code runs there: the loader's items are made on the
    CPU and each batch moved to the device, the generator's rows are drawn in NumPy on the CPU
    and moved, the models live on the device. Returns the student and per-epoch mean losses
    (cross-entropy on retain rows, KL)."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    num_classes = split.data.num_classes
    teacher = copy.deepcopy(model).to(device).eval()
    student = copy.deepcopy(model).to(device).train()
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    loader = merged_loader(split, batch_size, seed)
    history = []
    for _ in range(epochs):
        student.train()
        running_ce, running_kl = [], []
        for x, y, pseudo in loader:
            x, y, pseudo = x.to(device), y.to(device), pseudo.to(device)
            with torch.no_grad():
                teacher_out = teacher(x)
                if c == 0.0:
                    dummy = generator_outputs(y, len(x), num_classes)
                elif c == 1.0:
                    dummy = generator_outputs(None, len(x), num_classes)
                else:
                    forget_rows = torch.where(pseudo == 1)[0]
                    shuffled = forget_rows[torch.randperm(len(forget_rows))]
                    k = max(int(len(forget_rows) * c), 1)
                    chosen = shuffled[torch.randperm(len(forget_rows))[:k]]
                    relabelled = copy.deepcopy(y)
                    relabelled[chosen] = torch.randint(0, num_classes, (len(chosen),),
                                                       device=y.device)
                    dummy = generator_outputs(relabelled, len(x), num_classes)
                dummy = dummy.to(device)
            optimizer.zero_grad()
            out = student(x)
            ce = selective_cross_entropy(out, y, pseudo)
            kl = custom_kl(teacher_out, dummy, out, pseudo, tau)
            running_ce.append(ce.item())
            running_kl.append(kl.item())
            (ce + kl).backward()
            optimizer.step()
        history.append({"ce_retain": sum(running_ce) / len(running_ce),
                        "kl": sum(running_kl) / len(running_kl)})
    return student.eval(), history
