//! The condition language: Python-like expressions translated into Rhai.
