"""The fleet backend: purchase flow, Vipps MobilePay, operators' API."""
