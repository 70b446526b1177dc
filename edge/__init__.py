"""The edge agent: one process per vending machine, between the MDB bus and MQTT."""
