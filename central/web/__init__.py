"""HTTP pages of central: login, staff console, admin, public status."""
