"""The REST API: integrators' view of the CRM, scoped to the caller's organization."""
