"""Prompt text and the pieces that turn retrieved chunks and a question into LLM messages."""
