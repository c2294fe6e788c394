"""The Streamlit dashboard (streak_dashboard.py) and its query module (queries.py)."""
