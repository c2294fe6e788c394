"""Presentation helpers every page shares: text escaping, number/colour formatting, the page
context (cached queries, header, problems) and the sidebar."""
