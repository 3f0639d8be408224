"""The defect-type classifier: a small Vision Transformer over selected patch embeddings.

Each image becomes N tokens (its selected patches). A token is the patch's PaDiM embedding,
standardised, plus its anomaly score, projected to 64 dimensions; its grid position is added as
a fixed 2-D sinusoidal code (so the same model works on any grid size). A class token, 4
pre-norm encoder layers with 8 heads and a linear head give the type. Training redraws the
patches of every image each epoch (for afps and random), a free augmentation that matters with
only about a hundred labelled images.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch
from torch import nn

from .devices import cpu_threads, resolve_device
from .errors import AfpsError, ModelFileError
from .jobs import Progress, check_cancel, no_progress
from .modelfile import load_model, save_model
from .selection import select_patches

if TYPE_CHECKING:
    from .closer_look import CloseLook

FORMAT_VERSION = 1
KIND = "afps-classifier"


@dataclass
class ClassifierConfig:
    n: int = 100  # patches per image
    strategy: str = "afps"
    sd: float = 0.15
    dim: int = 64
    depth: int = 4
    heads: int = 8
    mlp_dim: int = 128
    dropout: float = 0.1
    epochs: int = 40
    lr: float = 1e-3
    batch_size: int = 16
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    use_scores: bool = True  # feed each patch's anomaly score beside its embedding
    resample: bool = True  # redraw patches every epoch (afps/random only)
    seed: int = 0
    linear_c: float = 0.3  # inverse L2 strength of the linear head (pooled, region)


@dataclass
class Example:
    """One image as the classifier sees it (all arrays on the patch grid)."""

    embeddings: np.ndarray  # (gh, gw, D), float16 or float32
    patch_map: np.ndarray  # (gh, gw) anomaly scores
    label: int = -1  # class index, -1 when unknown
    valid: Optional[np.ndarray] = None  # (gh, gw) bool, the unpadded patches
    name: str = ""
    look: Optional[CloseLook] = None  # the close look at the defect, for the region classifier


@dataclass
class Prediction:
    label: str
    index: int
    confidence: float
    probabilities: list[float]
    positions: np.ndarray  # (N, 2) selected patches
    attention: np.ndarray  # (N,) class-token attention of the last layer, sums to 1


@dataclass
class EpochStats:
    epoch: int
    epochs: int
    loss: float
    train_accuracy: float
    val_accuracy: Optional[float] = None


@dataclass
class TrainHistory:
    epochs: list[EpochStats] = field(default_factory=list)

    def record(self, stats: EpochStats, on_epoch: Optional[Callable[[EpochStats], None]]) -> None:
        self.epochs.append(stats)
        if on_epoch:
            on_epoch(stats)


def training_labels(train: Sequence[Example]) -> np.ndarray:
    """The class indices of ``train``, which every classifier needs to hold at least two
    images, each of a known type, and at least two types."""
    labels = np.array([ex.label for ex in train])
    if len(train) < 2 or (labels < 0).any():
        raise AfpsError("Training needs at least 2 labelled images, each with a known defect type.")
    if len(set(labels.tolist())) < 2:
        raise AfpsError("Training needs images of at least two defect types.")
    return labels


def accuracy(predictions: Sequence[Prediction], examples: Sequence[Example]) -> float:
    """The share of ``examples`` whose prediction names their type."""
    return float(np.mean([p.index == ex.label for p, ex in zip(predictions, examples)]))


def sinusoidal_2d(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """(..., 2) positions in 0..1 -> (..., dim) fixed sine/cosine code (dim divisible by 4)."""
    quarter = dim // 4
    freqs = torch.exp(
        torch.arange(quarter, device=pos.device, dtype=pos.dtype) * (-math.log(100.0) / quarter)
    )
    angles = pos[..., :, None] * freqs * (2 * math.pi)  # (..., 2, quarter)
    code = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (..., 2, dim/2)
    return code.flatten(-2)


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        # No dropout inside attention: it forces the slow unfused kernel (measured 8x slower on CPU).
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        h = self.norm1(x)
        a, w = self.attn(h, h, h, need_weights=need_weights, average_attn_weights=True)
        x = x + a
        return x + self.mlp(self.norm2(x)), w


class PatchViT(nn.Module):
    def __init__(self, in_dim: int, n_classes: int, cfg: ClassifierConfig):
        super().__init__()
        if cfg.dim % cfg.heads or cfg.dim % 4:
            raise AfpsError(
                f"Token dimension {cfg.dim} must be divisible by 4 and by {cfg.heads} heads."
            )
        self.dim = cfg.dim
        self.proj = nn.Linear(in_dim, cfg.dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        nn.init.trunc_normal_(self.cls, std=0.02)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            EncoderBlock(cfg.dim, cfg.heads, cfg.mlp_dim, cfg.dropout) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, n_classes)

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor, need_attention: bool = False):
        """tokens (B, N, in_dim), pos (B, N, 2) in 0..1 -> logits (B, K), attention (B, N) or None."""
        x = self.proj(tokens) + sinusoidal_2d(pos, self.dim)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.drop(x)
        attn = None
        for i, block in enumerate(self.blocks):
            last = i == len(self.blocks) - 1
            x, w = block(x, need_weights=need_attention and last)
            if w is not None:
                attn = w[:, 0, 1:]
                attn = attn / attn.sum(-1, keepdim=True).clamp_min(1e-12)
        return self.head(self.norm(x[:, 0])), attn


class DefectClassifier:
    """A PatchViT plus everything needed to turn Examples into predictions, and back from disk."""

    def __init__(
        self,
        classes: Sequence[str],
        in_dim: int,
        config: Optional[ClassifierConfig] = None,
        *,
        device="auto",
    ):
        if len(classes) < 2:
            raise AfpsError("A classifier needs at least two defect types.")
        if len(set(classes)) != len(classes):
            raise AfpsError(f"Defect types must be distinct: {list(classes)}")
        self.classes = list(classes)
        self.in_dim = in_dim
        self.config = config or ClassifierConfig()
        self.device = resolve_device(device)
        torch.manual_seed(self.config.seed)
        self.net = PatchViT(self.token_dim, len(self.classes), self.config).to(self.device)
        self.feat_mean = torch.zeros(in_dim)
        self.feat_std = torch.ones(in_dim)
        self.score_mean, self.score_std = 0.0, 1.0

    needs_looks = False  # the ViT reads the detection grid only

    @property
    def token_dim(self) -> int:
        return self.in_dim + (1 if self.config.use_scores else 0)

    # --- tokens -----------------------------------------------------------------------------

    def _positions(self, ex: Example, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        return select_patches(ex.patch_map, c.n, c.strategy, c.sd, rng, valid=ex.valid)

    def _tokens(self, ex: Example, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        r, c = positions[:, 0], positions[:, 1]
        emb = torch.from_numpy(np.asarray(ex.embeddings[r, c], dtype=np.float32))
        emb = (emb - self.feat_mean) / self.feat_std
        if self.config.use_scores:
            s = torch.from_numpy(np.asarray(ex.patch_map[r, c], dtype=np.float32))[:, None]
            emb = torch.cat([emb, (s - self.score_mean) / self.score_std], dim=1)
        gh, gw = ex.patch_map.shape
        pos = torch.from_numpy(positions.astype(np.float32)) / torch.tensor(
            [max(gh - 1, 1), max(gw - 1, 1)]
        )
        return emb, pos

    def _batch(self, examples, positions) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [self._tokens(ex, p) for ex, p in zip(examples, positions)]
        return (
            torch.stack([t for t, _ in pairs]).to(self.device),
            torch.stack([p for _, p in pairs]).to(self.device),
        )

    def _standardise_from(self, examples: Sequence[Example]) -> None:
        # Channel statistics over every patch of the training images (float64 sums: no stacking).
        s1 = np.zeros(self.in_dim)
        s2 = np.zeros(self.in_dim)
        sc1 = sc2 = 0.0
        count = 0
        for ex in examples:
            e = np.asarray(ex.embeddings, dtype=np.float64).reshape(-1, self.in_dim)
            s1 += e.sum(0)
            s2 += (e**2).sum(0)
            m = np.asarray(ex.patch_map, dtype=np.float64).ravel()
            sc1 += m.sum()
            sc2 += (m**2).sum()
            count += e.shape[0]
        mean = s1 / count
        std = np.sqrt(np.maximum(s2 / count - mean**2, 1e-12))
        self.feat_mean = torch.from_numpy(mean).float()
        self.feat_std = torch.from_numpy(np.maximum(std, 1e-6)).float()
        self.score_mean = float(sc1 / count)
        self.score_std = float(np.sqrt(max(sc2 / count - self.score_mean**2, 1e-12)))

    # --- training ---------------------------------------------------------------------------

    def fit(self, train: Sequence[Example], val: Sequence[Example] = (), **kwargs) -> TrainHistory:
        """Train on labelled examples; ``val`` adds a held-out accuracy to every epoch's stats."""
        with cpu_threads(1, self.device):
            return self._fit(train, val, **kwargs)

    def _fit(
        self,
        train: Sequence[Example],
        val: Sequence[Example] = (),
        *,
        progress: Progress = no_progress,
        cancel: Optional[threading.Event] = None,
        on_epoch: Optional[Callable[[EpochStats], None]] = None,
    ) -> TrainHistory:
        c = self.config
        labels = training_labels(train)
        for ex in train:
            if ex.patch_map.size < c.n:
                raise AfpsError(
                    f"N = {c.n} patches is more than the grid holds ({ex.patch_map.size})."
                )
        self._standardise_from(train)
        torch.manual_seed(c.seed)
        rng = np.random.default_rng(c.seed)
        opt, sched = self._optimiser(len(train))
        loss_fn = nn.CrossEntropyLoss(label_smoothing=c.label_smoothing)
        target = torch.from_numpy(labels).long()
        fixed = [self._positions(ex, np.random.default_rng(c.seed)) for ex in train]
        history = TrainHistory()
        for epoch in range(c.epochs):
            self.net.train()
            resample = c.resample and c.strategy != "top"
            positions = [self._positions(ex, rng) for ex in train] if resample else fixed
            order = rng.permutation(len(train))
            total_loss, correct = self._train_epoch(
                train, positions, order, target, (opt, sched, loss_fn), cancel
            )
            stats = EpochStats(epoch + 1, c.epochs, total_loss / len(train), correct / len(train))
            if val:
                stats.val_accuracy = accuracy(self._predict(val), val)
            history.record(stats, on_epoch)
            progress(epoch + 1, c.epochs, f"Epoch {epoch + 1}/{c.epochs}: loss {stats.loss:.3f}")
        self.net.eval()
        return history

    def _optimiser(self, n_train: int):
        """Adam with a cosine schedule over every step of the run."""
        c = self.config
        opt = torch.optim.Adam(self.net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        steps_per_epoch = math.ceil(n_train / c.batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(1, c.epochs * steps_per_epoch)
        )
        return opt, sched

    def _train_epoch(self, train, positions, order, target, optimiser, cancel) -> tuple[float, int]:
        """One pass over ``train`` in ``order``: (summed loss, number classified right)."""
        opt, sched, loss_fn = optimiser
        total_loss, correct = 0.0, 0
        for start in range(0, len(train), self.config.batch_size):
            check_cancel(cancel)
            idx = order[start : start + self.config.batch_size]
            tokens, pos = self._batch([train[i] for i in idx], [positions[i] for i in idx])
            y = target[idx].to(self.device)
            logits, _ = self.net(tokens, pos)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        return total_loss, correct

    # --- prediction -------------------------------------------------------------------------

    def predict(self, examples: Sequence[Example], **kwargs) -> list[Prediction]:
        """Classify examples. Patch selection uses each image's own anomaly map and a fixed seed,
        so the same image always gets the same patches and the same answer."""
        with cpu_threads(1, self.device):
            return self._predict(examples, **kwargs)

    @torch.no_grad()
    def _predict(
        self, examples: Sequence[Example], *, seed: Optional[int] = None, batch_size: int = 64
    ) -> list[Prediction]:
        self.net.eval()
        seed = self.config.seed if seed is None else seed
        out: list[Prediction] = []
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            positions = [self._positions(ex, np.random.default_rng(seed)) for ex in chunk]
            tokens, pos = self._batch(chunk, positions)
            logits, attn = self.net(tokens, pos, need_attention=True)
            probs = torch.softmax(logits, dim=1).cpu().numpy()
            attn = attn.cpu().numpy()
            for i, p in enumerate(probs):
                k = int(p.argmax())
                out.append(
                    Prediction(self.classes[k], k, float(p[k]), p.tolist(), positions[i], attn[i])
                )
        return out

    def flops(self) -> int:
        """FLOPs of one forward pass on one image (counted by torch, as the paper reports)."""
        from torch.utils.flop_counter import FlopCounterMode

        tokens = torch.zeros(1, self.config.n, self.token_dim, device=self.device)
        pos = torch.zeros(1, self.config.n, 2, device=self.device)
        self.net.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            self.net(tokens, pos)
        return int(counter.get_total_flops())

    # --- files ------------------------------------------------------------------------------

    def save(self, path, extra: Optional[dict] = None) -> None:
        settings = {
            "config": asdict(self.config),
            "classes": self.classes,
            "in_dim": self.in_dim,
            "score_mean": self.score_mean,
            "score_std": self.score_std,
            "extra": extra or {},
        }
        tensors = {f"net.{k}": v.detach().cpu() for k, v in self.net.state_dict().items()}
        tensors["feat_mean"] = self.feat_mean
        tensors["feat_std"] = self.feat_std
        save_model(path, KIND, FORMAT_VERSION, settings, tensors)

    @classmethod
    def load(cls, path, *, device="auto") -> DefectClassifier:
        settings, tensors = load_model(path, KIND, FORMAT_VERSION)
        return cls.from_loaded(path, settings, tensors, device=device)

    @classmethod
    def from_loaded(cls, path, settings: dict, tensors: dict, *, device="auto") -> DefectClassifier:
        try:
            model = cls(
                settings["classes"],
                int(settings["in_dim"]),
                ClassifierConfig(**settings["config"]),
                device=device,
            )
            state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
            model.net.load_state_dict(state)
            model.feat_mean = tensors["feat_mean"].float()
            model.feat_std = tensors["feat_std"].float()
            model.score_mean = float(settings["score_mean"])
            model.score_std = float(settings["score_std"])
            model.extra = settings.get("extra", {})
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise ModelFileError(
                f"{path} is not a usable classifier ({type(exc).__name__}: {str(exc)[:200]}). Train it again."
            ) from exc
        model.net.eval()
        return model
