-- docker-compose: the tag store and the demo sources live in schemas of their own in a
-- database separate from Airflow's metadata.
CREATE DATABASE lifecycle OWNER airflow;
\connect lifecycle
CREATE SCHEMA IF NOT EXISTS lifecycle AUTHORIZATION airflow;
CREATE SCHEMA IF NOT EXISTS demo AUTHORIZATION airflow;
