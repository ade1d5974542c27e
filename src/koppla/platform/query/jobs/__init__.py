"""Asynchronous queries in the shape of Adobe's Query Service API (`/data/foundation/query`):
jobs that run in the background and keep their rows for paging, and shared query templates."""
