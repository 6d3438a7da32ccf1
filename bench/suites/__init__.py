"""The benchmark sections, grouped by what they measure; each function returns a JSON-able dict."""
