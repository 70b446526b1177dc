"""The shared vocabulary of vendgate: money, MQTT messages, the MDB cashless codec. Pure code."""
