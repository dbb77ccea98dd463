"""Guards: input sanitising and injection rules (deepened by the security layer)."""
