"""moodindex: find photos by the emotions on the faces in them."""

__version__ = "0.1.0"
