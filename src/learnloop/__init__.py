"""learnloop: turn user feedback into better models, automatically and safely."""

__version__ = "0.1.0"

__all__ = ["__version__"]
