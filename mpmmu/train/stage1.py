"""Stage 1: fine-tune one branch on its own modality's images.

The branch (EfficientNet-Lite0 with CBAM for mammography, ECA for ultrasound) learns a
malignant-vs-benign logit with class-balanced binary cross-entropy (``pos_weight`` = benign /
malignant count), AdamW and a cosine learning-rate schedule after a one-epoch linear warm-up.
Validation AUC after every epoch drives early stopping, and the weights of the best epoch are
kept. Every epoch writes a checkpoint (weights, optimiser, schedule, history, random states) to
``checkpoint_dir/last.pt``. Calling :func:`train_branch` again with the same directory and
settings continues from it, and on CPU gives the same history as an uninterrupted run.

On CPU the model runs in channels-last memory format, which made Lite0 training about 1.65x
faster on a 2-core machine; on CUDA it runs under automatic mixed precision (bfloat16 where the
GPU supports it, else float16 with gradient scaling).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mpmmu.models.branch import DEFAULT_ATTENTION_STAGES, Branch, build_branch
from mpmmu.train.augment import AUGMENT_POLICIES
from mpmmu.train.dataset import (
    CachedImageDataset,
    CaseRowLike,
    ImageLoader,
    image_path,
    image_roi,
    read_and_preprocess,
)

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
BEST_WEIGHTS_NAME = "best.safetensors"
SUMMARY_NAME = "branch.json"

# Settings that change how fast a run goes but not what it computes, so a run may resume with
# different values.
_RUNTIME_FIELDS = frozenset({"device", "amp", "num_threads", "progress", "num_workers", "eval_batch_size"})


@dataclass(frozen=True)
class Stage1Config:
    """Settings of one stage-1 training run.

    Attributes
    ----------
    epochs : int
        Maximum number of epochs.
    batch_size : int
    lr : float
        Peak learning rate of AdamW, reached after ``warmup_epochs``.
    weight_decay : float
        AdamW's decoupled weight decay.
    warmup_epochs : float
        Linear warm-up length before the cosine decay to zero.
    image_size : int
        Side of the model input in pixels; must equal the preprocessing ``size``.
    augment : bool
        Apply the modality's augmentation policy to training images.
    seed : int
        Seed of the weights of new layers, the batch order, augmentation and dropout.
    patience : int
        Epochs without a validation-AUC gain larger than ``min_delta`` before stopping.
    min_delta : float
    freeze_stages : int
        Backbone stages (after the stem) kept frozen, see :meth:`Branch.freeze_stages`.
    backbone, attention, attention_stages, pretrained, dropout
        Passed to :func:`mpmmu.models.build_branch`; ``attention`` None picks the modality's.
    device : str
        "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
    amp : bool
        Mixed precision on CUDA; ignored on CPU.
    num_threads : int or None
        ``torch.set_num_threads`` for CPU work; None leaves PyTorch's setting.
    channels_last : bool
        Use the channels-last memory format.
    num_workers : int
        DataLoader worker processes; 0 augments in the training process.
    eval_batch_size : int
    progress : bool
        Show a tqdm bar per epoch.
    """

    epochs: int = 30
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0
    image_size: int = 224
    augment: bool = True
    seed: int = 0
    patience: int = 6
    min_delta: float = 1e-4
    freeze_stages: int = 0
    backbone: str = "efficientnet_lite0"
    attention: str | None = None
    attention_stages: tuple[int | str, ...] = DEFAULT_ATTENTION_STAGES
    pretrained: bool = True
    dropout: float = 0.2
    device: str = "auto"
    amp: bool = True
    num_threads: int | None = 2
    channels_last: bool = True
    num_workers: int = 0
    eval_batch_size: int = 64
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "image_size", "patience", "eval_batch_size"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"Stage1Config.{name} must be >= 1, got {value}")
        if not self.lr > 0:
            raise ValueError(f"Stage1Config.lr must be > 0, got {self.lr}")
        if self.warmup_epochs < 0:
            raise ValueError(f"Stage1Config.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"Stage1Config.num_threads must be >= 1 or None, got {self.num_threads}")
        object.__setattr__(self, "attention_stages", tuple(self.attention_stages))

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-ready values."""
        values = asdict(self)
        values["attention_stages"] = list(self.attention_stages)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Stage1Config:
        """Build a config from :meth:`to_dict` output; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown Stage1Config keys {unknown}; known keys are {sorted(known)}")
        return cls(**values)


class BranchPrediction(NamedTuple):
    """Per-row outputs of :func:`predict_branch`, in the order of the rows.

    Attributes
    ----------
    probabilities : numpy.ndarray
        float64 (N,) probability of malignancy.
    features : numpy.ndarray
        float32 (N, F) pooled features after attention.
    attention : dict of str to numpy.ndarray
        "spatial_attention" float32 (N, h, w) when the branch has CBAM, "channel_weights"
        float32 (N, C) when it has any attention; absent keys mean no such gate.
    """

    probabilities: np.ndarray
    features: np.ndarray
    attention: dict[str, np.ndarray]


@dataclass
class _TrainingState:
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_auc: float = -math.inf
    best_epoch: int = -1
    best_state: dict[str, torch.Tensor] | None = None
    epochs_without_improvement: int = 0
    finished: bool = False


def resolve_device(device: str) -> torch.device:
    """Return the torch device for "auto", "cpu", "cuda" or "cuda:N"."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available; use 'cpu' or 'auto'")
    return resolved


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global random generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _labelled_rows(rows: Sequence[CaseRowLike], modality: str, purpose: str) -> list[CaseRowLike]:
    """Keep rows with an image of ``modality``, once per distinct (image, lesion box, label)."""
    kept: list[CaseRowLike] = []
    seen: set[tuple[str, Any, Any]] = set()
    without_image = 0
    for row in rows:
        path = image_path(row, modality)
        if path is None:
            without_image += 1
            continue
        roi = image_roi(row, modality)
        key = (str(path), tuple(roi) if roi is not None else None, row.label)
        if key in seen:
            continue
        seen.add(key)
        kept.append(row)
    if without_image:
        logger.info("%s: skipped %d rows without a %s image", purpose, without_image, modality)
    if len(kept) < len(rows) - without_image:
        logger.info(
            "%s: kept %d distinct %s images of %d rows (pseudo-pairs reuse images)",
            purpose, len(kept), modality, len(rows) - without_image,
        )
    return kept


def _rows_fingerprint(rows: Sequence[CaseRowLike], modality: str) -> str:
    digest = hashlib.sha256()
    for row in rows:
        roi = image_roi(row, modality)
        digest.update(f"{row.case_id}|{image_path(row, modality)}|{roi}|{row.label}\n".encode())
    return digest.hexdigest()


def _binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _autocast(device: torch.device, amp: bool):
    # NOTE: the CUDA branch (bfloat16 or float16 with GradScaler) has not run on a GPU yet; the
    # tests cover the CPU path only.
    if device.type == "cuda" and amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return torch.autocast(device_type=device.type, enabled=False)


def _evaluate(
    branch: Branch,
    loader: DataLoader,
    device: torch.device,
    config: Stage1Config,
    criterion: nn.Module,
) -> tuple[float, np.ndarray]:
    """Return the mean loss and the malignancy probabilities over ``loader``."""
    branch.eval()
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    total, count, probabilities = 0.0, 0, []
    with torch.no_grad():
        for batch, labels in loader:
            batch = batch.to(device, memory_format=memory_format, non_blocking=True)
            labels = labels.to(device)
            with _autocast(device, config.amp):
                logits = branch(batch)
            logits = logits.float()
            total += float(criterion(logits, labels)) * len(labels)
            count += len(labels)
            probabilities.append(torch.sigmoid(logits).cpu().numpy())
    return total / max(1, count), np.concatenate(probabilities).astype(np.float64)


def _save_checkpoint(
    path: Path,
    branch: Branch,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    state: _TrainingState,
    identity: dict[str, Any],
) -> None:
    payload = {
        "identity": json.dumps(identity, sort_keys=True),
        "model": branch.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": state.epoch,
        "history": json.dumps(state.history),
        "best_auc": state.best_auc,
        "best_epoch": state.best_epoch,
        "best_state": state.best_state,
        "epochs_without_improvement": state.epochs_without_improvement,
        "finished": state.finished,
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "rng_python": json.dumps(random.getstate()),
    }
    temporary = path.with_suffix(".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def _load_checkpoint(
    path: Path,
    branch: Branch,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    identity: dict[str, Any],
) -> _TrainingState:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    saved_identity = json.loads(payload["identity"])
    if saved_identity != identity:
        differing = sorted(k for k in set(saved_identity) | set(identity) if saved_identity.get(k) != identity.get(k))
        raise ValueError(
            f"checkpoint {path} was written by a run with different {differing}; pass resume=False "
            "or use another checkpoint_dir to start a new run"
        )
    branch.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    scaler.load_state_dict(payload["scaler"])
    torch.set_rng_state(payload["rng_torch"])
    if payload["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng_cuda"])
    python_state = json.loads(payload["rng_python"])
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    return _TrainingState(
        epoch=int(payload["epoch"]),
        history=json.loads(payload["history"]),
        best_auc=float(payload["best_auc"]),
        best_epoch=int(payload["best_epoch"]),
        best_state=payload["best_state"],
        epochs_without_improvement=int(payload["epochs_without_improvement"]),
        finished=bool(payload["finished"]),
    )


def _write_best(checkpoint_dir: Path, branch: Branch, config: Stage1Config, state: _TrainingState, preprocess_config: Any) -> None:
    from safetensors.torch import save_file

    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in branch.state_dict().items()}
    save_file(tensors, str(checkpoint_dir / BEST_WEIGHTS_NAME))
    summary = {
        "branch": branch.config(),
        "stage1": config.to_dict(),
        "preprocess": preprocess_config.to_dict(),
        "best_epoch": state.best_epoch,
        "best_val_auc": state.best_auc,
        "history": state.history,
        "weights_provenance": branch.weights_provenance,
    }
    (checkpoint_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2))


def train_branch(
    train_rows: Sequence[CaseRowLike],
    val_rows: Sequence[CaseRowLike],
    modality: str,
    config: Stage1Config | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    *,
    preprocess_config: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
    loader: ImageLoader = read_and_preprocess,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
) -> tuple[Branch, list[dict[str, float]]]:
    """Fine-tune the ``modality`` branch and return it with the weights of its best epoch.

    Parameters
    ----------
    train_rows, val_rows : sequence of CaseRow
        Labelled rows; those without an image of ``modality`` are skipped, and rows repeating the
        same image, lesion box and label (pseudo-pairs) are used once. Validation must contain
        both classes.
    modality : {"mammography", "ultrasound"}
    config : Stage1Config, optional
    checkpoint_dir : str or pathlib.Path, optional
        Where ``last.pt`` (every epoch), ``best.safetensors`` and ``branch.json`` (at the end) go.
        None keeps nothing on disk.
    preprocess_config : mpmmu.preprocess.PreprocessConfig, optional
        Defaults to ``PreprocessConfig(size=config.image_size)``.
    cache_dir : str or pathlib.Path, optional
        Image cache folder (see :class:`mpmmu.train.dataset.ImageCache`).
    resume : bool
        Continue from ``checkpoint_dir/last.pt`` when it exists.
    loader : callable
        Image decoder (see :func:`mpmmu.train.dataset.read_and_preprocess`).
    on_epoch_end : callable, optional
        Called with each epoch's history entry after the checkpoint is written.

    Returns
    -------
    branch : Branch
        On CPU, in evaluation mode, holding the best epoch's weights.
    history : list of dict
        Per epoch: "epoch", "train_loss", "val_loss", "val_auc", "lr", "seconds".

    Raises
    ------
    ValueError
        If the training or validation rows lack a class, the sizes disagree, or the checkpoint
        belongs to a different run.
    """
    config = config or Stage1Config()
    if preprocess_config is None:
        from mpmmu.preprocess import PreprocessConfig

        preprocess_config = PreprocessConfig(size=config.image_size)
    if int(preprocess_config.size) != config.image_size:
        raise ValueError(
            f"preprocess_config.size is {preprocess_config.size} but Stage1Config.image_size is "
            f"{config.image_size}; make them equal"
        )
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)

    train_rows = _labelled_rows(train_rows, modality, "training")
    val_rows = _labelled_rows(val_rows, modality, "validation")
    seed_everything(config.seed)
    augment = AUGMENT_POLICIES[modality] if config.augment else None
    train_set = CachedImageDataset(
        train_rows, modality, preprocess_config, cache_dir, augment, seed=config.seed, loader=loader, progress=config.progress
    )
    val_set = CachedImageDataset(val_rows, modality, preprocess_config, cache_dir, None, loader=loader, progress=config.progress)
    for name, dataset in (("training", train_set), ("validation", val_set)):
        classes = set(dataset.labels.tolist())
        if classes != {0, 1}:
            raise ValueError(
                f"the {name} rows of {modality} hold only the classes {sorted(classes)} "
                f"({len(dataset)} images); both benign and malignant cases are needed"
            )

    # Seed again so the new layers start the same whether or not images were decoded just now.
    seed_everything(config.seed)
    branch = build_branch(
        modality,
        backbone=config.backbone,
        attention=config.attention,
        attention_stages=config.attention_stages,
        pretrained=config.pretrained,
        dropout=config.dropout,
    )
    branch.freeze_stages(config.freeze_stages)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    branch.to(device=device, memory_format=memory_format)

    positives = int(train_set.labels.sum())
    negatives = len(train_set) - positives
    pos_weight = torch.tensor(negatives / positives, dtype=torch.float32, device=device)
    criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    drop_last = len(train_set) > config.batch_size
    steps_per_epoch = len(train_set) // config.batch_size if drop_last else 1
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = min(total_steps, round(config.warmup_epochs * steps_per_epoch))

    parameters = [p for p in branch.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(total_steps, warmup_steps))
    use_scaler = device.type == "cuda" and config.amp and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    val_loader = DataLoader(val_set, batch_size=config.eval_batch_size, shuffle=False, num_workers=config.num_workers)
    identity = {
        "modality": modality,
        "stage1": {k: v for k, v in config.to_dict().items() if k not in _RUNTIME_FIELDS},
        "preprocess": preprocess_config.to_dict(),
        "train_rows": _rows_fingerprint(train_rows, modality),
        "val_rows": _rows_fingerprint(val_rows, modality),
    }
    # Compare in JSON form, as the checkpoint stores it, so tuples and lists compare equal.
    identity = json.loads(json.dumps(identity, sort_keys=True))

    state = _TrainingState()
    checkpoint_path = None
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        checkpoint_path = checkpoint_dir / CHECKPOINT_NAME
        if resume and checkpoint_path.exists():
            state = _load_checkpoint(checkpoint_path, branch, optimizer, scheduler, scaler, identity)
            logger.info("Resuming %s training from %s after epoch %d", modality, checkpoint_path, state.epoch)

    logger.info(
        "Training the %s branch on %s: %d training images (%d malignant), %d validation images, "
        "pos_weight %.2f, %d epochs at most",
        modality, device, len(train_set), positives, len(val_set), float(pos_weight), config.epochs,
    )
    while not state.finished and state.epoch < config.epochs:
        epoch = state.epoch
        started = time.perf_counter()
        # Seeding per epoch makes dropout and batch order independent of how the run was resumed.
        torch.manual_seed(config.seed * 1_000_003 + epoch)
        train_set.set_epoch(epoch)
        order = torch.Generator().manual_seed(config.seed * 1_000_033 + epoch)
        train_loader = DataLoader(
            train_set,
            batch_size=config.batch_size,
            shuffle=True,
            drop_last=drop_last,
            generator=order,
            num_workers=config.num_workers,
            pin_memory=device.type == "cuda",
        )

        branch.train()
        total, count = 0.0, 0
        bar = tqdm(train_loader, desc=f"{modality} epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False, disable=not config.progress)
        for batch, labels in bar:
            batch = batch.to(device, memory_format=memory_format, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            with _autocast(device, config.amp):
                logits = branch(batch)
            loss = criterion(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            total += float(loss.detach()) * len(labels)
            count += len(labels)
            bar.set_postfix(loss=f"{total / count:.4f}")
        bar.close()

        val_loss, probabilities = _evaluate(branch, val_loader, device, config, criterion)
        val_auc = _binary_auc(val_set.labels, probabilities)
        record = {
            "epoch": epoch + 1,
            "train_loss": total / max(1, count),
            "val_loss": val_loss,
            "val_auc": val_auc,
            "lr": float(optimizer.param_groups[0]["lr"]),
            "seconds": time.perf_counter() - started,
        }
        state.history.append(record)
        state.epoch = epoch + 1
        if val_auc > state.best_auc + config.min_delta:
            state.best_auc, state.best_epoch = val_auc, epoch + 1
            state.best_state = {k: v.detach().cpu().clone() for k, v in branch.state_dict().items()}
            state.epochs_without_improvement = 0
        else:
            state.epochs_without_improvement += 1
        if state.epochs_without_improvement >= config.patience:
            state.finished = True
            logger.info("Stopping early: validation AUC has not improved for %d epochs", config.patience)
        if state.epoch >= config.epochs:
            state.finished = True
        logger.info(
            "%s epoch %d/%d: train loss %.4f, val loss %.4f, val AUC %.4f (best %.4f at epoch %d), %.1f s",
            modality, epoch + 1, config.epochs, record["train_loss"], val_loss, val_auc,
            state.best_auc, state.best_epoch, record["seconds"],
        )
        if checkpoint_path is not None:
            _save_checkpoint(checkpoint_path, branch, optimizer, scheduler, scaler, state, identity)
        if on_epoch_end is not None:
            on_epoch_end(record)

    if state.best_state is not None:
        branch.load_state_dict(state.best_state)
    branch.to(device="cpu", memory_format=torch.contiguous_format).eval()
    if checkpoint_dir is not None:
        _write_best(checkpoint_dir, branch, config, state, preprocess_config)
    logger.info("Best %s validation AUC %.4f at epoch %d", modality, state.best_auc, state.best_epoch)
    return branch, copy.deepcopy(state.history)


def predict_branch(
    branch: Branch,
    rows: Sequence[CaseRowLike],
    preprocess_config: Any = None,
    *,
    batch_size: int = 64,
    device: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    loader: ImageLoader = read_and_preprocess,
    progress: bool = False,
) -> BranchPrediction:
    """Score every row's image of the branch's modality, for stage 2.

    Parameters
    ----------
    branch : Branch
    rows : sequence of CaseRow
        Every row needs an image of ``branch.modality``; labels are not read.
    preprocess_config : mpmmu.preprocess.PreprocessConfig, optional
        Must match the one the branch was trained with; defaults to ``PreprocessConfig()``.
    batch_size : int
    device : str
        "auto", "cpu", "cuda" or "cuda:N".
    cache_dir, loader
        As for :class:`mpmmu.train.dataset.CachedImageDataset`.
    progress : bool

    Returns
    -------
    BranchPrediction
        ``(probabilities, features, attention)`` in the order of ``rows``.

    Raises
    ------
    ValueError
        If a row lacks the modality's image.
    """
    if preprocess_config is None:
        from mpmmu.preprocess import PreprocessConfig

        preprocess_config = PreprocessConfig()
    if not rows:
        return BranchPrediction(
            probabilities=np.zeros(0, dtype=np.float64),
            features=np.zeros((0, branch.feature_dim), dtype=np.float32),
            attention={},
        )
    resolved = resolve_device(device)
    dataset = CachedImageDataset(
        rows, branch.modality, preprocess_config, cache_dir, None, loader=loader, labelled=False, progress=progress
    )
    data = DataLoader(dataset, batch_size=batch_size, shuffle=False)

    was_training = branch.training
    parameter = next(branch.parameters())
    original_device = parameter.device
    branch.to(resolved).eval()
    probabilities, features, spatial, channel = [], [], [], []
    try:
        with torch.no_grad():
            for batch, _ in tqdm(data, desc=f"scoring {branch.modality}", unit="batch", disable=not progress):
                with _autocast(resolved, True):
                    output = branch.forward_features(batch.to(resolved))
                probabilities.append(torch.sigmoid(output.logit.float()).cpu().numpy())
                features.append(output.features.float().cpu().numpy())
                if output.spatial_attention is not None:
                    spatial.append(output.spatial_attention.cpu().numpy())
                if output.channel_weights is not None:
                    channel.append(output.channel_weights.cpu().numpy())
    finally:
        branch.to(original_device)
        branch.train(was_training)

    attention: dict[str, np.ndarray] = {}
    if spatial:
        attention["spatial_attention"] = np.concatenate(spatial).astype(np.float32)
    if channel:
        attention["channel_weights"] = np.concatenate(channel).astype(np.float32)
    return BranchPrediction(
        probabilities=np.concatenate(probabilities).astype(np.float64),
        features=np.concatenate(features).astype(np.float32),
        attention=attention,
    )
