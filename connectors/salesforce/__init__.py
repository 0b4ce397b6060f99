"""The Salesforce connector: full and incremental pulls into the canonical store, within API limits."""

from connectors.salesforce.pull import pull_salesforce

__all__ = ["pull_salesforce"]
