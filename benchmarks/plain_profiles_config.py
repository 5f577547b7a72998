"""jupyterhub_config.py of hub_bench.py's plain baseline: JupyterHub 6.1.1 with KubeSpawner 7.1.0's form for a static
`profile_list`, as an operator would set them up without teamhub: the bench person's allowed resources as the
list, the person in the same 20 teams as JupyterHub groups, named servers on, JupyterHub's own templates and login
(DummyAuthenticator with the bench password). Nothing of teamhub runs in this hub: teamhub only reads the catalog
here, once, to write the list.

The person has a running named server here too (the launch page of a person with a running server is what is
measured), so the servers are JupyterHub's SimpleLocalProcessSpawner (KubeSpawner needs a cluster to start one),
whose form is the string KubeSpawner serves for that static list (ksform.py). Ports and folders come from the
environment HubProcess sets for every hub (TEAMHUB_VALUES, TEAMHUB_DATA_DIR, TEAMHUB_BIND_URL, TEAMHUB_HUB_PORT,
TEAMHUB_PROXY_API_PORT, TEAMHUB_CHP).
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hubvalues import BENCH_USER, PASSWORD, kubespawner_profiles  # noqa: E402
from ksform import form_spawner  # noqa: E402
from teamhub.catalog.access import Person, resolve  # noqa: E402
from teamhub.catalog.loader import load  # noqa: E402

env = os.environ
state = Path(env["TEAMHUB_DATA_DIR"])
catalog = load([env["TEAMHUB_VALUES"]], demo=True).catalog  # the bench accounts use the demo hash

c = get_config()  # noqa: F821
c.JupyterHub.bind_url = env["TEAMHUB_BIND_URL"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env["TEAMHUB_HUB_PORT"])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env['TEAMHUB_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [env["TEAMHUB_CHP"]]
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = PASSWORD
c.Authenticator.allow_all = True
c.JupyterHub.allow_named_servers = True
c.JupyterHub.load_groups = {team: {"users": [BENCH_USER]} for team in catalog.local_users[BENCH_USER]}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = str(state / "homes" / "{username}")
c.Spawner.ip = "127.0.0.1"
if os.geteuid() == 0:
    c.Spawner.args = ["--allow-root"]
c.Spawner.options_form = form_spawner(kubespawner_profiles(catalog, resolve(catalog, Person(f"local:{BENCH_USER}")))).options_form

