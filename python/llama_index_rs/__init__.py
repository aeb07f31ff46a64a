"""Rust drop-in replacements for LlamaIndex's in-memory stores."""

from llama_index_rs._native import __version__

__all__ = ["__version__"]
