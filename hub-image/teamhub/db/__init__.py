"""The hub database: settings, backups, migration, restore, and `teamhub db`."""
