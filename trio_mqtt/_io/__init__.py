"""Trio I/O: transports, the byte stream, and the link that runs one connection."""
