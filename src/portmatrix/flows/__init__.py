"""Flows: decoded packets grouped into flows (records, the table, orientation), the
`Flows` model every input fills, and the `Traffic` the commands judge."""
