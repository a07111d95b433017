"""Atelier's developer tools: the embedded local stack (Kafka-protocol broker, S3 endpoint, trace
sink, the services as processes) and the `atelier local`, `atelier service` and `atelier provision`
commands. Nothing here is deployed; it may depend on every service."""
