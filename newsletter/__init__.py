"""newsletter: write a monthly email newsletter as a plain file, preview it, send it."""

__version__ = "0.1.0"
