"""One module per publisher: pure parsers from the bytes a publisher serves to typed rows.

Parsers never touch the network or the warehouse, so every quirk is tested on real files
without either. Errors say which source, which file, which row and what was expected.
"""
