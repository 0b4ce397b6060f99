"""The canonical data model shared by every stage, and the database it lives in.

Every CRM record is keyed by ``(crm, object, crm_id)``; CRM-specific shapes are mapped
into these tables by ``connectors/`` and out of them by ``writeback/``.
"""
