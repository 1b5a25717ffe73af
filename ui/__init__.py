"""Streamlit helpers for the app's pages: session keys, cached loaders, viewers and result panels.

Everything that calls ``st.*`` lives here or in ``pages/``; the ``mpmmu`` package never imports
Streamlit.
"""
