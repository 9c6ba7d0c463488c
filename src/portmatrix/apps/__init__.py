"""Application labels: what a flow's payload says it carries (SSH, TLS with its
server name, HTTP with its Host, ...), whatever its port, for the flows behind
findings (`check`) or every flow listed (`flows --app`)."""
