"""Ingestion of the shop's documents into the vector index."""
