"""The harness around the product: `manage.py demo` and `manage.py bench`.

It drives the domain apps from outside (starts workers, launches a campaign, waits
for it standing in for beat, measures), so none of them carries code only a demo or
a benchmark runs. `floor.py` is a standalone script the benchmark runs beside it.
"""
