"""Versioned documents (notes, minutes, reports, attachments) with signatures."""
