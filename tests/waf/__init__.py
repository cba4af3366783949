"""WAF tests."""
