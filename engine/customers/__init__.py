"""Customers: import and merge from many sources, and the profile of one customer."""
