"""OPC UA connectors of anode-twin: the client gateway and the emulated PLCs."""
