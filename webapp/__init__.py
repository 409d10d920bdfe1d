"""Plinth web app: the merchant UI (Streamlit), the AR share pages and the model library.

`webapp.library` (storage) and `webapp.jobs` (the job queue) never import Streamlit, so the CLI can
publish models without it. `webapp.server.serve()` starts everything in one process.
"""
