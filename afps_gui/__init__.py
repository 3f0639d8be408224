"""AFPS Inspector: anomaly detection (PaDiM) and defect classification (AFPS + ViT)."""

__version__ = "0.1.0"
