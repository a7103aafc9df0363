"""Offline datasets: any Minari dataset (flat or Dict observations, optional frames) and D4RL
kitchen files, read episode by episode; ``skillgym.data.record`` records scripted kitchen
demonstrations (it loads the simulator, so it is not imported here).

Example:
    >>> from skillgym.data import open_dataset, Episode, write_minari_dataset
"""

from skillgym.data.dataset import DatasetError, Episode, OfflineDataset, open_dataset, write_minari_dataset

__all__ = ["DatasetError", "Episode", "OfflineDataset", "open_dataset", "write_minari_dataset"]
