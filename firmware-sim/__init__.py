"""The vend board simulator: a vending machine controller (VMC), bus master on MDB."""
