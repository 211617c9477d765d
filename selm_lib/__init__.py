"""selm: SELM and SER-Evals as a DVC pipeline of notebooks.

Modules follow the data: ``corpora`` (scanners) -> ``audio`` -> ``splits`` -> ``curate``;
``synth`` writes the embedded synthetic default; ``run`` executes the notebooks.
"""

__version__ = "0.1.0"
