"""Tests of the project-wide configuration: logs, requests, tasks."""
