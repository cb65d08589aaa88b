"""The incident store: tables, queries, migrations. Knows no platform and no adapter."""
