"""What a person reads about versions: one version's plots on the golden set, and two versions
compared on the same examples."""

from learnloop.reports.service import ParamChange, VersionComparison, VersionReport, VersionReports

__all__ = ["ParamChange", "VersionComparison", "VersionReport", "VersionReports"]
