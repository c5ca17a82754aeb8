"""FHIR R4 API at /fhir/R4/ (docs/fhir.md): read and search over tenants, people and the audit log."""
