"""waf package."""
