"""KubeSpawner 7.1.0's profile form without a cluster, for the benchmark's comparison hubs.

Only KubeSpawner's constructor talks to Kubernetes (load_config, shared_client); a KubeSpawner made with `_mock`
and those two stubbed renders its form exactly as it would in a hub: `.options_form` is the string it serves
for a static `profile_list`, `_render_options_form_dynamically(spawner)` what it does per request for a callable
one. The comparison hubs run their servers with another spawner (the person must have one running), so this
KubeSpawner only draws the form.
"""

import kubespawner.spawner as ks

ks.load_config = lambda **kwargs: None
ks.shared_client = lambda *args, **kwargs: None


def form_spawner(profile_list) -> ks.KubeSpawner:
    return ks.KubeSpawner(_mock=True, profile_list=profile_list)
