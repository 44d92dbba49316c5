r"""reidgraph: person re-identification as graph problems on PyTorch Geometric."""

from reidgraph.seed import seed_everything

__version__ = "0.1.0"

__all__ = ["seed_everything", "__version__"]
