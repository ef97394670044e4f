"""Card sources: where card UIDs come from at the edge, behind one small interface
(:class:`CardSource`). ``readers.sources.pcsc`` is the real PC/SC path (needs the optional
``pyscard``, imported lazily); importing this package needs nothing beyond the standard library."""

from readers.sources.base import CardPresented, CardSource, SourceError

__all__ = ["CardPresented", "CardSource", "SourceError"]
