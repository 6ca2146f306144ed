"""In-memory samples: a tensor of any shape per sample, its label and its id. Images (compact
uint8 storage, per-batch resize and normalisation, optional augmentation) are one kind; float
inputs of any shape (a table's encoded rows, a user's own features) are used as they are."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import SftcError


class ChannelMismatch(SftcError):
    """A mean or std with another number of values than the images have channels."""

    def __init__(self, text: str, channels: int, given: int):
        super().__init__(text)
        self.channels, self.given = channels, given

    def recorded(self, checkpoint, dataset: str) -> SftcError:
        """The same problem when the values were read from the run.json beside ``checkpoint``
        (no --mean was given): the checkpoint was trained on other images."""
        return SftcError(f"--checkpoint {checkpoint} was trained on {self.given}-channel images "
                         f"(the run.json beside it records {self.given} normalisation values), "
                         f"but {dataset} has {self.channels}-channel images: it is a model of "
                         "other data; give the --dataset it was trained on")


@dataclass
class ImageData:
    """All samples of one dataset (train and held-out together) held as tensors.

    ``images`` is uint8 ``[N, C, H, W]`` (compact: 1 byte per pixel; ``mean``/``std`` are then in
    [0, 1] units, as torchvision's ``Normalize`` after ``ToTensor``) or a float tensor of any shape
    ``[N, ...]`` that is used as it is (a user's own features). ``labels`` is int64 ``[N]``.
    Batches come from :meth:`batch`, which converts to float, resizes to ``image_size`` when it
    differs from the stored size, and normalises per channel.
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    name: str = "custom"
    image_size: int | None = None
    class_names: list[str] | None = None
    ids: list[str] | None = field(default=None, repr=False)   # names of the samples, if any
    _norm: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.is_uint8 and self.images.dim() != 4:
            raise SftcError("uint8 images must be shaped [N, C, H, W]; got "
                            f"{tuple(self.images.shape)}")
        if not self.is_uint8 and not torch.is_floating_point(self.images):
            raise SftcError(f"inputs must be uint8 images or a float tensor, got {self.images.dtype}")
        if self.labels.dim() != 1 or self.labels.shape[0] != self.images.shape[0]:
            raise SftcError(f"need one label per sample: {self.images.shape[0]} inputs but labels "
                            f"shaped {tuple(self.labels.shape)}")
        self.labels = self.labels.long()
        if len(self) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= self.num_classes):
            raise SftcError(f"labels must lie in [0, {self.num_classes - 1}]; got "
                            f"{int(self.labels.min())}..{int(self.labels.max())}")
        if self.is_uint8:
            self.mean = tuple(self.mean) if self.mean is not None else (0.0,) * self.channels
            self.std = tuple(self.std) if self.std is not None else (1.0,) * self.channels
            if len(self.mean) != self.channels or len(self.std) != self.channels:
                raise SftcError("mean/std need one value per image channel")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def is_uint8(self) -> bool:
        return self.images.dtype == torch.uint8

    @property
    def channels(self) -> int:
        return int(self.images.shape[1]) if self.images.dim() == 4 else 0

    @property
    def in_channels(self) -> int:
        """What a model builder is given as ``in_channels``: a sample's first dimension (an
        image's channels, a table row's features; 1 for a scalar sample)."""
        return sample_in_channels(self.input_shape)

    @property
    def stored_size(self) -> int:
        return int(self.images.shape[-1]) if self.images.dim() == 4 else 0

    @property
    def input_size(self) -> int:
        return self.image_size or self.stored_size

    @property
    def device(self) -> torch.device:
        return self.images.device

    def normalise_with(self, mean=None, std=None, normalize: str | None = None) -> "ImageData":
        """Replace the per-channel ``mean``/``std`` (in [0, 1] units; one value for every channel
        or one per channel); ``normalize="none"`` feeds pixels / 255 as they are (mean 0, std 1),
        ``"dataset"`` or None keeps the dataset's own. Returns ``self``."""
        chosen = normalization(self.channels if self.is_uint8 else None, mean, std, normalize)
        if chosen is not None:
            self.mean, self.std = chosen
            self._norm = None
        return self

    @property
    def preprocessing(self) -> dict:
        """What a model trained on this data saw: mean, std and the side it was resized to."""
        return {"mean": list(self.mean) if self.mean is not None else None,
                "std": list(self.std) if self.std is not None else None,
                "image_size": self.input_size or None}

    def to(self, device: torch.device | str) -> "ImageData":
        """Move the uint8 storage to ``device`` (cheap on GPU: one byte per pixel)."""
        self.images = self.images.to(device)
        self.labels = self.labels.to(device)
        self._norm = None
        return self

    def _normaliser(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._norm is None or self._norm[0].device != device:
            mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1) * 255.0
            std = torch.tensor(self.std, device=device).view(1, -1, 1, 1) * 255.0
            self._norm = (mean, std)
        return self._norm

    @property
    def input_shape(self) -> list[int]:
        """The shape of one input as a model sees it (after the per-batch resize)."""
        if self.images.dim() == 4:
            return [self.channels, self.input_size, self.input_size]
        return list(self.images.shape[1:])

    @property
    def train_deterministic(self) -> bool:
        """A sample's input is the same every time it is read (augmentation is the run's
        ``augment``, decided by the engine)."""
        return True

    def batches(self, indices, device: torch.device | str, augment: bool = False,
                train: bool = False):
        """``(x, y)`` for each index tensor of ``indices``, in order (the data-source interface,
        :mod:`sftc.data.source`; ``train`` makes no difference in memory)."""
        for index in indices:
            yield self.batch(index, device, augment=augment)

    def digest(self, index: torch.Tensor, label: str) -> str:
        """SHA-256 of the samples at ``index``: their inputs and labels, in order."""
        import hashlib

        index = index.to(self.images.device)
        h = hashlib.sha256()
        h.update(f"{label}:{len(index)}:{self.num_classes}".encode())
        for start in range(0, len(index), 4096):
            chunk = index[start:start + 4096]
            images = self.images[chunk].detach().cpu().contiguous()
            if images.dtype == torch.bfloat16:
                images = images.float()
            h.update(images.numpy().tobytes())
            h.update(self.labels[chunk].cpu().numpy().astype("<i8").tobytes())
        return h.hexdigest()

    def fingerprint(self) -> str:
        """SHA-256 of every sample, label and the normalisation (what a cache key needs)."""
        import hashlib
        import json

        h = hashlib.sha256()
        for tensor in (self.images, self.labels):
            t = tensor.detach().cpu().contiguous()
            h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.dtype != torch.uint8
                     else t.numpy().tobytes())
        h.update(json.dumps({"mean": list(self.mean or ()), "std": list(self.std or ()),
                             "classes": self.num_classes}).encode())
        return h.hexdigest()

    def batch(self, index: torch.Tensor, device: torch.device | str, augment: bool = False,
              generator: torch.Generator | None = None,
              train: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(x, y)`` for the samples at ``index``: float, resized, normalised, on ``device``."""
        device = torch.device(device)
        idx = index.to(self.images.device)
        x = self.images[idx].to(device, non_blocking=True)
        y = self.labels[idx].to(device, non_blocking=True)
        if not self.is_uint8:
            return x, y
        x = x.float()
        if augment:
            x = random_crop_flip(x, generator=generator)
        if self.image_size and self.image_size != self.stored_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=self.image_size < self.stored_size)
        mean, std = self._normaliser(device)
        return (x - mean) / std, y


def sample_in_channels(shape) -> int:
    """A sample's first dimension: channels of ``[C, H, W]``, features of ``[F]``, 1 for ``[]``."""
    return int(shape[0]) if len(shape) else 1


NORMALIZE = ("dataset", "none")


def normalization(channels: int | None, mean=None, std=None,
                  normalize: str | None = None) -> tuple[tuple, tuple] | None:
    """The (mean, std) asked for, checked against ``channels`` (None: the data are not images);
    None when the dataset's own are kept. One value is used for every channel."""
    if normalize not in (None, *NORMALIZE):
        raise SftcError(f"--normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}")
    given = mean is not None or std is not None
    if normalize == "none" and given:
        raise SftcError("--normalize none feeds pixels unnormalised; drop --mean/--std, or drop "
                        "--normalize none")
    if not given and normalize != "none":
        return None
    if channels is None:
        raise SftcError("--mean/--std/--normalize apply to images; these data are float inputs, "
                        "used as they are")
    if normalize == "none":
        return (0.0,) * channels, (1.0,) * channels
    if mean is None or std is None:
        raise SftcError("--mean and --std go together (e.g. --mean 0.5 --std 0.5)")
    values = []
    for name, given_values in (("mean", mean), ("std", std)):
        numbers = tuple(float(v) for v in (given_values if isinstance(given_values, (list, tuple))
                                           else (given_values,)))
        if len(numbers) == 1:
            numbers = numbers * channels
        if len(numbers) != channels:
            need = "1 value" if channels == 1 else f"1 or {channels} values (one per channel)"
            raise ChannelMismatch(f"--{name} needs {need} for these {channels}-channel images, "
                                  f"got {len(numbers)}", channels, len(numbers))
        if not all(math.isfinite(v) for v in numbers) or (name == "std" and min(numbers) <= 0):
            raise SftcError(f"--{name} must be finite" + (" and positive" if name == "std" else "")
                            + f", got {', '.join(f'{v:g}' for v in numbers)}")
        values.append(numbers)
    return values[0], values[1]


def random_crop_flip(x: torch.Tensor, padding: int | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Vectorised random crop (zero padding, 1/8 of the side by default) and horizontal flip.

    The paper's code trains its original models with torchvision's RandomCrop + RandomHorizontalFlip;
    this does the same on a whole batch at once.
    """
    n, _, h, w = x.shape
    pad = padding if padding is not None else max(1, h // 8)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=gen_device).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=gen_device).to(x.device)
    rows = (torch.arange(h, device=x.device).view(1, h) + dy.view(n, 1))  # [n, h]
    cols = (torch.arange(w, device=x.device).view(1, w) + dx.view(n, 1))  # [n, w]
    flip = torch.rand(n, generator=generator, device=gen_device).to(x.device) < 0.5
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols)
    batch_idx = torch.arange(n, device=x.device).view(n, 1, 1)
    out = padded.permute(0, 2, 3, 1)[batch_idx, rows.view(n, h, 1), cols.view(n, 1, w)]
    return out.permute(0, 3, 1, 2).contiguous()
