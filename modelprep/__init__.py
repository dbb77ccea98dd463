"""Preparation of the local models from PyPI packages (e5 embeddings, the Gemma LLM)."""
