"""Stripe Connect: the gateway (the only module that calls the Stripe SDK), Stripe's own
currency rules and rate limits, and the workflows that move money through Stripe (payment
validation, split, refunds, settlement, onboarding and KYC) with their pure decision rules.
"""
