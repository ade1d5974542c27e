"""Tenant schemas and custom attributes: the schema registry's stored part, the custom fields a
schema defines, and the custom attributes seen in each dataset's records."""
