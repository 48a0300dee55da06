"""Personal-data protection: identity validation, masking, field encryption with key rotation,
staff users and roles, consent records and the access audit log.

Pure modules (identity, masking, crypto, passwords, tokens) import nothing from the store; the
services (staff, consent, audit) read and write the tables in `fenqi.store.schema.privacy`.
See docs/privacy.md.
"""
