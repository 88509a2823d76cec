"""Helpers of the reliability tests: real Redis topologies, load and fault injection."""
