r"""Named edge types stored in ``data.edge_type`` (the spine's vocabulary)."""

VISUAL: int = 0
r"""Visual kNN edge (G-Fusion :math:`E_v`, Eq. 1)."""

SPATIOTEMPORAL: int = 1
r"""Spatio-temporal edge (G-Fusion :math:`E_{st}`, Eq. 4–5)."""

CROSS_MODALITY: int = 2
r"""Visible ↔ infrared edge (GUR Eq. 10)."""

EDGE_TYPE_NAMES: dict[int, str] = {
    VISUAL: "visual",
    SPATIOTEMPORAL: "spatiotemporal",
    CROSS_MODALITY: "cross_modality",
}

__all__ = ["VISUAL", "SPATIOTEMPORAL", "CROSS_MODALITY", "EDGE_TYPE_NAMES"]
