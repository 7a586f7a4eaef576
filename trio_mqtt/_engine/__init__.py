"""The client's machinery: reconnects, the outbound queue, inbound routing, session stores."""
