"""The foundation every other package stands on: money in minor units, batches and their
summaries, errors, retries, settings checks, HTTP plumbing. Imports no other package of the
connector, and nothing from Airflow.
"""
