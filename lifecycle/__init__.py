"""Lifecycle: enforce a privacy policy's retention and lawful-basis rules on data sources.

This package holds the domain logic and never imports Airflow; the DAGs in ``dags/`` call it
through the thin layer in ``lifecycle_airflow``.
"""
