"""Signing keys kept by an outside system (AWS KMS): audit checkpoints and exports."""
