"""Plinth web app: the merchant UI (Streamlit), the AR share pages and the model library.

`webapp.library` (storage), `webapp.jobs` (the job records) and `webapp.workers` (the processes
that run them) never import Streamlit, so the CLI can publish models without it.
`webapp.server.serve()` starts everything in one process; `webapp.cli` is the `plinth` command.
The web app reaches the reconstruction library only through `pipeline`'s public face.
"""
