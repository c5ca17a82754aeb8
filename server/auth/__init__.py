"""Accounts, roles, cookie sessions, CSRF and room tokens."""
