# A minimal jupyterhub_config.py that wires the database the way hub-image/jupyterhub_config.py should:
# teamhub.db.migrate.prepare_or_exit() before JupyterHub opens the database, then db_url from its result.
import os

from teamhub.db import migrate

db = migrate.prepare_or_exit(None, os.environ["TEAMHUB_DATA_DIR"], hold_seconds=0)
c = get_config()  # noqa: F821
c.JupyterHub.db_url = db.url
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.cookie_secret_file = os.path.join(os.environ["TEAMHUB_DATA_DIR"], "cookie_secret")
