"""The languages every citizen-facing page speaks: the kiosk, the visit from home, the booking page.

Defined once here; the appliance, central's kiosk settings and central's public pages import it.
Staff pages (console, admin) need only German and English. Writing direction comes from Babel's
locale data (`Locale.character_order`), as on the kiosk page (appliance/kiosk/i18n.py).
"""
from __future__ import annotations

# In the order a citizen sees them on the language chooser.
CITIZEN_LANGUAGES: tuple[str, ...] = ("de", "en", "tr", "ar", "uk", "ru")
