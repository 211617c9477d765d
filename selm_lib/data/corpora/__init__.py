"""Corpus scanners, one module per corpus: a corpus root in its real distributed layout -> the
rows of a manifest. ``base`` holds the manifest format and the shared walkers, ``registry`` the
scanner of every corpus by name and :func:`selm_lib.data.corpora.registry.scan`."""
