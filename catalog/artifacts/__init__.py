"""Artifact classes and operations (MLRun's ``mlrun.artifacts``)."""

from catalog.artifacts.base import Artifact, Prepared
from catalog.artifacts.dataset import DatasetArtifact, TableArtifact
from catalog.artifacts.feature_store import FeatureSetArtifact, FeatureVectorArtifact
from catalog.artifacts.lists import ArtifactList
from catalog.artifacts.manager import update_dataset_meta
from catalog.artifacts.model import ModelArtifact, get_model, update_model
from catalog.artifacts.plots import ChartArtifact, DirArtifact, PlotArtifact, PlotlyArtifact

__all__ = [
    "Artifact",
    "ArtifactList",
    "ChartArtifact",
    "DatasetArtifact",
    "DirArtifact",
    "FeatureSetArtifact",
    "FeatureVectorArtifact",
    "ModelArtifact",
    "PlotArtifact",
    "PlotlyArtifact",
    "Prepared",
    "TableArtifact",
    "get_model",
    "update_dataset_meta",
    "update_model",
]
