"""Ports the local stack chooses for its services."""

from atelier_devtools.local.s3 import ephemeral_low, free_port, port_is_free


def test_free_ports_come_from_below_the_kernels_ephemeral_range() -> None:
    """Regression: free_port let the kernel choose (bind to 0), from the range outgoing connections take
    their source ports from; one took an exporter's port before it bound it, and the exporter failed
    to start with EADDRINUSE (address already in use) in a crash-recovery test."""
    low = ephemeral_low()
    ports = {free_port() for _ in range(20)}
    assert all(1024 <= port < low for port in ports), (sorted(ports), low)
    assert len(ports) > 1  # Picked at random, so two stacks starting together rarely pick alike.
    assert all(port_is_free(port) for port in ports)
