"""selm: SELM and SER-Evals as a DVC pipeline of compute stages and report notebooks.

Subpackages follow the data: ``config`` (params.yaml) -> ``data`` (corpora, audio, labels,
splits, the synthetic default) -> ``features`` (frozen backbones, the feature cache) -> ``selm``
(the model, its training and adaptation) and ``serevals`` (the probes) -> ``evaluation``
(metrics, baselines, results); ``stages`` holds one module per compute stage and ``report`` the
notebook runner and report helpers.
"""

__version__ = "0.1.0"
