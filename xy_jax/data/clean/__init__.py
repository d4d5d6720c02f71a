"""Corpus curation before tokenisation, as datatrove pipeline steps (see pipeline.py for the order)."""
