"""A subject's data: export it, erase it (the right to be forgotten)."""

from learnloop.privacy.service import ErasureReport, PrivacyService

__all__ = ["ErasureReport", "PrivacyService"]
