"""Validation of the closed forms against simulations of the dynamics they describe."""
