"""Secrets: the rule table, the redaction engine built from it, and the scan of history."""
