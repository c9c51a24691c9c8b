"""Operators: one workflow step each; the decisions live in :mod:`mirakl_connector.workflows`."""
