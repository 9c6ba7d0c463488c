"""Flow records as input: cloud VPC flow logs, NetFlow/IPFIX and Zeek conn.log, read
into the same `Flows` as captures, each source honest about what it cannot know."""
