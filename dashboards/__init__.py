"""The Streamlit dashboard: a thin shell (streak_dashboard.py), a data layer (data/), shared
presentation helpers (ui/) and one module pair per page (app_pages/)."""
