"""The HTML report: plots (functions returning Figures) and one self-contained page (html.py)."""
