"""The dashboard's data layer: where to read (connection), what exists (catalog), how SQL is
written (sql), which boxes a page looks at (filters, closed stages) and the lookups every page
shares (lookups). Nothing here imports Streamlit, so every number is testable without a browser.
"""
