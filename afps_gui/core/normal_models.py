"""What "normal" looks like, learnt from the patch embeddings of defect-free images.

Two models, one interface (``update`` with a batch of patch embeddings, ``finish``, then
``distances``), so that the feature extraction, the maps and the files stay the same:

- ``GaussianPerPosition`` (PaDiM): one Gaussian per patch position; the Mahalanobis distance to
  the Gaussian of the patch's own position. Right when every part sits in the same place
  (magnetic tiles: image AUROC 0.96). Its statistics grow with grid x D x D.
- ``NearestNeighbourMemory`` (PatchCore's memory bank): a coreset of normal patches from every
  position; the distance to the nearest of them, wherever it came from. Right when parts move or
  several lie in one picture (VisA capsules at 448 x 672: image AUROC 0.70 with the Gaussians,
  0.94 with the memory). Its size is fixed by ``memory_size``, not by the grid.

Both fit in memory that does not grow with the number of images: the Gaussians keep running sums;
the memory keeps a uniform random sample of at most ``reservoir`` patches while streaming.
"""

from __future__ import annotations

from typing import Optional

import torch

NORMAL_MODELS = ("gaussian", "knn")


class GaussianPerPosition:
    """Running sums (float64, shifted by a reference mean for numerical safety) -> mean and
    inverse covariance per position."""

    kind = "gaussian"

    def __init__(self, eps: float = 0.01):
        self.eps = eps
        self.mean: Optional[torch.Tensor] = None  # (P, D) float32
        self.inv_cov: Optional[torch.Tensor] = None  # (P, D, D) float32
        self._shift = self._s1 = self._s2 = None
        self._n = 0

    def update(self, x: torch.Tensor) -> None:
        """x: (P, B, D) embeddings of B images at the P grid positions."""
        if self._shift is None:
            P, _, D = x.shape
            self._shift = x.mean(1, keepdim=True)
            self._s1 = torch.zeros(P, D, dtype=torch.float64, device=x.device)
            self._s2 = torch.zeros(P, D, D, dtype=torch.float64, device=x.device)
        xc = x - self._shift
        self._s1.add_(xc.sum(1))
        # One batch's outer products in float32 (3-4x faster than float64; the shift keeps
        # them small), summed over batches in float64. In chunks of patches: a whole-grid
        # float32 product would be half as big as s2.
        for p0 in range(0, xc.shape[0], 1024):
            chunk = xc[p0 : p0 + 1024].float()
            self._s2[p0 : p0 + 1024].add_(torch.bmm(chunk.transpose(1, 2), chunk))
        self._n += x.shape[1]

    def finish(self) -> None:
        n = self._n
        mu_c = self._s1 / n
        # The covariances are made in place of the sums, and inverted straight into float32:
        # each P x D x D float64 temporary was 720 MB at 56 x 52 positions and D = 176.
        cov = self._s2
        self._s2 = None
        cov.baddbmm_(mu_c[:, :, None], mu_c[:, None, :], alpha=-n).div_(n - 1)
        cov.diagonal(dim1=1, dim2=2).add_(self.eps)
        self.mean = (mu_c + self._shift[:, 0, :].double()).float()
        self.inv_cov = inverse_spd(cov, dtype=torch.float32)
        self._shift = self._s1 = None

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        """x: (P, B, D) -> (P, B) Mahalanobis distances, one bmm for the whole batch (reading
        P x D x D floats once per batch instead of once per image is what makes it fast)."""
        y = x - self.mean[:, None, :]
        return (torch.bmm(y, self.inv_cov) * y).sum(-1).clamp_min_(0).sqrt_()

    def tensors(self) -> dict:
        return {"mean": self.mean.cpu(), "inv_cov": self.inv_cov.cpu()}

    def load(self, tensors: dict, device) -> None:
        self.mean = tensors["mean"].float().to(device)
        self.inv_cov = tensors["inv_cov"].float().to(device)
        P, D = self.mean.shape
        if self.inv_cov.shape != (P, D, D):
            raise ValueError("mean and inverse covariances disagree in shape")

    @property
    def positions(self) -> int:
        return self.mean.shape[0]

    def memory_bytes(self) -> int:
        return self.inv_cov.numel() * 4 + self.mean.numel() * 4


class NearestNeighbourMemory:
    """A coreset of normal patch embeddings; a patch's score is its distance to the nearest."""

    kind = "knn"

    def __init__(self, memory_size: int = 4000, reservoir: int = 200_000, seed: int = 0):
        self.memory_size = memory_size
        self.reservoir = reservoir
        self.bank: Optional[torch.Tensor] = None  # (M, D) float32
        self._gen = torch.Generator().manual_seed(seed)
        self._seed = seed
        self._sample: Optional[torch.Tensor] = None
        self._keys: Optional[torch.Tensor] = None

    def update(self, x: torch.Tensor) -> None:
        """x: (P, B, D). Keeps a uniform sample of all patches seen (reservoir sampling by random
        keys: the patches with the largest keys are a uniform sample of every patch so far)."""
        flat = x.reshape(-1, x.shape[-1]).float().cpu()
        keys = torch.rand(flat.shape[0], generator=self._gen)
        if self._sample is not None:
            flat = torch.cat([self._sample, flat])
            keys = torch.cat([self._keys, keys])
        if flat.shape[0] > self.reservoir:
            top = keys.topk(self.reservoir).indices
            flat, keys = flat[top], keys[top]
        self._sample, self._keys = flat.contiguous(), keys

    def finish(self) -> None:
        sample = self._sample
        self._sample = self._keys = None
        self.bank = greedy_coreset(sample, self.memory_size, self._seed).contiguous()

    def distances(self, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """x: (P, B, D) -> (P, B) Euclidean distance of each patch to its nearest normal patch."""
        P, B, D = x.shape
        q = x.reshape(-1, D)
        bank = self.bank.to(q.device)
        bank_sq = (bank * bank).sum(1)
        out = torch.empty(q.shape[0], device=q.device)
        for s in range(0, q.shape[0], chunk):
            c = q[s : s + chunk]
            # |q - m|^2 = |q|^2 - 2 q.m + |m|^2: one matrix product per chunk of patches
            d2 = torch.addmm(bank_sq, c, bank.T, alpha=-2.0).min(1).values
            out[s : s + chunk] = (d2 + (c * c).sum(1)).clamp_min_(0).sqrt_()
        return out.reshape(P, B)

    def tensors(self) -> dict:
        return {"memory": self.bank.cpu()}

    def load(self, tensors: dict, device) -> None:
        self.bank = tensors["memory"].float().to(device)
        if self.bank.ndim != 2:
            raise ValueError("the memory bank is not a matrix")

    def memory_bytes(self) -> int:
        return self.bank.numel() * 4


def greedy_coreset(x: torch.Tensor, k: int, seed: int = 0, dim: int = 32) -> torch.Tensor:
    """k rows of x that cover it (greedy k-centre, as PatchCore): each pick is the row farthest
    from those already picked. Distances are taken in a random ``dim``-d projection, which keeps
    the picks nearly the same at a fraction of the cost."""
    if x.shape[0] <= k:
        return x.clone()
    gen = torch.Generator().manual_seed(seed)
    z = (x @ torch.randn(x.shape[1], min(dim, x.shape[1]), generator=gen)).contiguous()
    z_sq = (z * z).sum(1)
    picks = torch.empty(k, dtype=torch.long)
    picks[0] = int(torch.randint(x.shape[0], (1,), generator=gen))
    nearest = torch.full_like(z_sq, float("inf"))
    for i in range(k):
        if i:
            picks[i] = int(nearest.argmax())
        p = picks[i]
        # |z - z_p|^2 through one matrix-vector product: no (N, dim) temporary per pick
        d = torch.addmv(z_sq, z, z[p], alpha=-2.0).add_(z_sq[p])
        torch.minimum(nearest, d, out=nearest)
    return x[picks]


def make_normal_model(kind: str, *, eps: float, memory_size: int, seed: int):
    if kind == "gaussian":
        return GaussianPerPosition(eps)
    if kind == "knn":
        return NearestNeighbourMemory(memory_size, seed=seed)
    raise ValueError(f"unknown normal model {kind!r}: use one of {NORMAL_MODELS}")


def inverse_spd(cov: torch.Tensor, chunk: int = 512, dtype=None) -> torch.Tensor:
    """Invert symmetric positive definite matrices with a batched Cholesky, in chunks.

    Cholesky is the numerically safe route for covariances, and the only batched inverse we
    found that does not deadlock in torch 2.14.1 (MKL) once torch.set_num_threads has been
    changed in the process (batched LU inverse and solve hang: reproduced). A matrix that is
    not positive definite even after + eps I gets more ridge instead of failing the fit.
    """
    out = torch.empty_like(cov, dtype=dtype or cov.dtype)
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    for start in range(0, cov.shape[0], chunk):
        c = cov[start : start + chunk]
        L, info = torch.linalg.cholesky_ex(c)
        bad = info != 0
        if bool(bad.any()):
            ridge = 1e-3 * c[bad].diagonal(dim1=1, dim2=2).mean(-1)[:, None, None]
            L[bad] = torch.linalg.cholesky(c[bad] + ridge * eye)
        out[start : start + chunk] = torch.cholesky_inverse(L)
    return out
