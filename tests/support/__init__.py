"""Helpers shared by test folders, not tests themselves: real workers, the broker,
campaigns and logs in given states, a scripted vendor, the simulator's messages,
CSV strategies, and what operators watch."""
