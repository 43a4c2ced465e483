"""Cross-cutting pieces every feature uses: database, errors, clock, schemas."""
