"""Venue adapters: one package per venue (sim, binance, zerodha), each with the same layout.

Every venue package offers the interfaces of `sq.venues.base`: a market source that yields
Arrow record batches in the market schema, an order gateway, and (for real venues) auth.
Venue SDK imports stay inside their package so `sq --help` never pays for them.
"""
