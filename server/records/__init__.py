"""Records: the audit log (and, later, documents and the FHIR API)."""
