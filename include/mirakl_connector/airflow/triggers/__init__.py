"""Triggers run by the triggerer: in the installed package so that it can import them."""
