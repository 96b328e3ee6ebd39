"""Dagster code locations: a Dagster project's definitions served and run by Tether.

Everything here imports ``dagster``, which only a Dagster location's image has (the
``tether[dagster]`` extra): ``tether_sdk.location.load_location`` imports this package only
for a location of kind ``dagster``, and nothing else in Tether imports it. See README.md.
"""
