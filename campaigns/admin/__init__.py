"""Campaigns in the admin: write and check a template, launch and steer, watch it run.

The admin is thin: checks and state changes are the lifecycle services' (the same
ones the commands and the API call), reads are campaigns.dashboard's; these modules
only show their results. Importing the package registers the campaign and chunk
admins.
"""

from campaigns.admin import campaign, chunks  # noqa: F401  (registers the admins)
