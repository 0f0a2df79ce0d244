"""Repositories: one module per feature; every method takes the tenant (app) id."""
