"""The thin Airflow-facing layer: Connections, Variables, params and task bodies.

Everything here resolves Airflow things (connections, variables, the run's logical date)
into plain values and calls the domain package ``lifecycle``, which never imports Airflow.
"""
