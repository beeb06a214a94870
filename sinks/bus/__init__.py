"""The bus: the wire format, the ZMQ publisher and CURVE keys (the client library is sinks.client)."""
