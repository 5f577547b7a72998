"""The launch page: the server-options form rendered from the catalog for one person.

Only the resources the person's teams allow, grouped by category, with everything a person needs to
choose (image, CPU, memory, GPU or accelerator choices, time limit) and their teams' quota use. Field
names are the contract's: resource, accelerator, sessionMinutes. The template is compiled once.
"""

from __future__ import annotations

import functools
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..catalog.access import resolve
from ..values.quantities import format_cpu

TEMPLATES = Path(__file__).resolve().parent / "templates"
LENGTHS = (15, 30, 60, 90, 120, 180, 240, 300, 360, 420, 480, 600, 720, 960, 1440)


@functools.cache
def _template():
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    return env.get_template("launch.html")


def duration(minutes: int) -> str:
    h, m = divmod(int(minutes), 60)
    if not h:
        return f"{m} min"
    return f"{h} h" if not m else f"{h} h {m} min"


def _gpu_text(gpu) -> str:
    return f"{gpu.count} × {gpu.resource}"


def _team_line(team) -> dict:
    """A team as the page names it: its display name and the operator's description of it."""
    return {"name": team.display_name, "description": team.description}


def view(catalog, person, usage=None, previous=None) -> dict:
    """Everything the template shows, computed here so the template stays a plain loop."""
    access = resolve(catalog, person)
    previous = previous or {}
    groups: dict = {}
    limits = []
    for res in access.resources:
        limit = catalog.resource_limit_minutes(res)
        limits.append(limit)
        image = catalog.images[res.image]
        card = {
            "key": res.key,
            "name": res.display_name,
            "description": res.description,
            "image": image.ref,
            "cpu": format_cpu(res.cpu_request) + (f" (up to {format_cpu(res.cpu_limit)})" if res.cpu_limit is not None else ""),
            "memory": str(res.memory_request) + (f" (up to {res.memory_limit})" if res.memory_limit is not None else ""),
            "gpu": _gpu_text(res.gpu) if res.gpu else None,
            "accelerators": [
                {"key": a, "name": catalog.accelerators[a].display_name, "description": catalog.accelerators[a].description,
                 "gpu": _gpu_text(catalog.accelerators[a].gpu),
                 "image": catalog.images[res.overrides[a].image].ref if a in res.overrides and res.overrides[a].image else None}
                for a in res.accelerators
            ],
            "limit": limit,
            "limit_text": duration(limit),
            "team": _team_line(catalog.teams[access.charged_team[res.key]]) if access.charged_team.get(res.key) else None,
        }
        groups.setdefault(res.category or "Environments", []).append(card)
    longest = max(limits, default=catalog.sessions.max_minutes)
    default = min(catalog.sessions.default_minutes, longest)
    lengths = sorted({m for m in LENGTHS if m <= longest} | {default} | set(limits))
    chosen_resource = previous.get("resource") if access.allows(str(previous.get("resource"))) else None
    if chosen_resource is None and access.resources:
        chosen_resource = access.resources[0].key
    try:
        chosen_minutes = int(previous.get("sessionMinutes") or default)
    except (TypeError, ValueError):
        chosen_minutes = default
    quotas = []
    for key in access.teams:
        team = catalog.teams[key]
        if team.max_servers is None and team.max_gpus is None:
            continue
        used = usage(key) if usage else None
        row = _team_line(team)
        if team.max_servers is not None:
            n = used.servers if used else 0
            row["servers"] = {"used": n, "max": team.max_servers, "left": max(team.max_servers - n, 0)}
        if team.max_gpus is not None:
            n = used.gpus if used else 0
            row["gpus"] = {"used": n, "max": team.max_gpus, "left": max(team.max_gpus - n, 0)}
        quotas.append(row)
    return {
        "groups": list(groups.items()),
        "lengths": [{"minutes": m, "text": duration(m)} for m in lengths],
        "chosen_resource": chosen_resource,
        "chosen_accelerator": previous.get("accelerator"),
        "chosen_minutes": chosen_minutes if chosen_minutes in lengths else default,
        "quotas": quotas,
        "empty": not access.resources,
        "local_mode": False,
    }


def render(catalog, person, usage=None, previous=None, local_mode=False) -> str:
    data = view(catalog, person, usage, previous)
    data["local_mode"] = local_mode
    return _template().render(**data)


async def options_form(spawner) -> str:
    """`c.Spawner.options_form`: called by JupyterHub whenever the launch page is shown."""
    from ..auth import person_for
    from .runtime import get_runtime

    rt = get_runtime()
    person = await person_for(spawner.user)
    # After a refused start (quota, too long, ...) the page comes back with the refusal: keep what the person
    # chose, so pressing Start again never silently starts another environment.
    previous = getattr(spawner, "teamhub_refused_request", None) or spawner.user_options or {}
    return render(rt.catalog, person, rt.quota.usage, previous, local_mode=rt.mode == "local")
