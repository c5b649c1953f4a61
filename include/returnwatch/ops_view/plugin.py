"""Placeholder until the ops page lands: registers nothing yet."""

from airflow.plugins_manager import AirflowPlugin


class ReturnwatchPlugin(AirflowPlugin):
    name = "returnwatch"
