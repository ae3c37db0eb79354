"""Tests of cliff's integrations into other libraries' trainers."""
