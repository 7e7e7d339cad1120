"""Models as use cases: create one (read, check and split its data, train version 1, crown
it, all or nothing) and delete one with everything it holds."""

from learnloop.models.creation import CreatedModel, ModelCreation, NewModel
from learnloop.models.data import BootstrapData, DataSource, FileSource, RowsSource
from learnloop.models.deletion import DeletionReport, ModelDeletion

__all__ = [
    "BootstrapData",
    "CreatedModel",
    "DataSource",
    "DeletionReport",
    "FileSource",
    "ModelCreation",
    "ModelDeletion",
    "NewModel",
    "RowsSource",
]
