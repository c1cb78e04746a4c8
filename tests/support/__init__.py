"""Helpers shared by test folders (real workers, the broker), not tests themselves."""
