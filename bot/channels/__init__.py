"""Channel adapters: each turns platform events into Incoming and Replies into platform calls."""
