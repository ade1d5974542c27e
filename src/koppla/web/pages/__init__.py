"""The admin pages: server-rendered (Jinja2 + htmx), each with a JSON twin under `/api/v1`."""
