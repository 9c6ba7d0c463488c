"""Flows: decoded packets grouped into flows (records, the table with its record
store and key index, orientation), the `Flows` model every input fills, and the
`Traffic` the commands judge."""
