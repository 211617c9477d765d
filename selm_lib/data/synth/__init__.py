"""Synthetic emotional speech: a source-filter voice and corpus generators."""
