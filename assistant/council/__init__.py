"""Council information systems: OParl sync (``sync``) over a careful HTTP client (``client``),
OParl objects mapped to document metadata (``mapping``)."""
