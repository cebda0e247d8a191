"""Artifact classes and operations (MLRun's ``mlrun.artifacts``)."""

from catalog.artifacts.base import Artifact, Prepared
from catalog.artifacts.dataset import DatasetArtifact, TableArtifact
from catalog.artifacts.feature_store import FeatureSetArtifact, FeatureVectorArtifact
from catalog.artifacts.manager import update_dataset_meta
from catalog.artifacts.model import ModelArtifact, update_model
from catalog.artifacts.plots import ChartArtifact, DirArtifact, PlotArtifact

__all__ = [
    "Artifact",
    "ChartArtifact",
    "DatasetArtifact",
    "DirArtifact",
    "FeatureSetArtifact",
    "FeatureVectorArtifact",
    "ModelArtifact",
    "PlotArtifact",
    "Prepared",
    "TableArtifact",
    "update_dataset_meta",
    "update_model",
]
