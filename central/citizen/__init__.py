"""What every citizen-facing page of central shares: the six citizen languages (i18n.py), the page
frame with its language chooser and writing direction (pages.py, templates/citizen/base.html).

Staff pages (console, admin) have their own German/English catalogue (central/i18n.py).
"""
