"""Arize through its official SDK (`arize`, the optional extra `arize`), imported only when used."""
