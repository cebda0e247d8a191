"""Artifact classes (MLRun's ``mlrun.artifacts``)."""

from catalog.artifacts.base import Artifact

__all__ = ["Artifact"]
