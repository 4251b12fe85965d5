"""The procedure domain: specs, signatures, versions, releases and rollback."""
