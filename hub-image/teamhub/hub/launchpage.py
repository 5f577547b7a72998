"""The launch page: the server-options form rendered from the catalog for one person.

Only the resources the person's teams allow, grouped by category, with everything a person needs to
choose (image, CPU, memory, GPU or accelerator choices, time limit) and their teams' quota use. Field
names are the contract's: resource, accelerator, sessionMinutes.

JupyterHub asks for this page on every visit of /hub/spawn, so it is built in layers (issue 12):
- each resource's card is rendered once per catalog and team it counts for (launch_card.html);
- each set of teams gets its page once (launch.html) as a list of text pieces: the cards' own strings,
  with empty slots where a request writes " checked", " selected" or a quota figure;
- a request fills those few slots in a copy of the list and joins it: no template runs, and the page
  allocates almost nothing that the garbage collector would have to trace.
Everything is kept for one catalog object: a new catalog (new values) starts afresh.
"""

from __future__ import annotations

import functools
import html
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from .. import clock
from ..catalog import devices
from ..catalog.access import access_of, is_admin, teams_of
from ..catalog.model import gpu_text
from ..values.quantities import format_cpu
from .quota import Usage

TEMPLATES = Path(__file__).resolve().parent / "templates"
LENGTHS = (15, 30, 60, 90, 120, 180, 240, 300, 360, 420, 480, 600, 720, 960, 1440)
MAX_TEAM_SETS = 128  # pages kept per catalog; each is a list of references to shared card strings
MAX_PEOPLE = 4096  # people whose set of teams is kept per catalog (then forgotten all at once)
# What a slot marker renders as. Autoescaping turns every "<" of catalog text into "&lt;", so this can
# only come from slot() itself.
MARKER = re.compile(r"<teamhub-slot (\d+)>")
INDENT = re.compile(r"\n[ \t]+")
NONE_HELD = Usage(0, 0)


@functools.cache
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def duration(minutes: int) -> str:
    h, m = divmod(int(minutes), 60)
    if not h:
        return f"{m} min"
    return f"{h} h" if not m else f"{h} h {m} min"


def _gpu_text(gpu) -> Markup:
    # "&times;", not the character itself: one character above ASCII makes the whole page a 2-byte-per-character
    # string, which every copy JupyterHub and tornado make of it (Markup, the template's join, utf-8) then pays.
    return Markup("{} &times; {}").format(gpu.count, gpu.resource)


def _accelerator_text(acc) -> str:
    return _gpu_text(acc.gpu) if acc.gpu else devices.text(acc.devices)  # an extended resource, or DRA devices


def _split(render) -> tuple[list, list]:
    """Call render(slot) and cut its output at the slots: (texts, slot specs), len(texts) == len(specs) + 1."""
    specs: list = []

    def slot(*spec):
        specs.append(spec)
        return Markup(f"<teamhub-slot {len(specs) - 1}>")

    pieces = MARKER.split(_compact(render(slot)))
    return pieces[0::2], [specs[int(i)] for i in pieces[1::2]]


def _compact(html_text: str) -> str:
    """The templates' indentation off every line: a browser shows a line break and the spaces after it alike
    (the pages hold no <pre> or <textarea>), and the page is a sixth smaller, so every request copies, sends and
    the proxy forwards that much less."""
    return INDENT.sub("\n", html_text)


def _team_line(team) -> dict:
    """A team as the page names it: its display name and the operator's description of it."""
    return {"name": team.display_name, "description": team.description}


def card_view(catalog, res, team_key) -> dict:
    """What one card shows; `team_key` is the team a server of it counts against (None: no team)."""
    limit = catalog.resource_limit_minutes(res)
    return {
        "key": res.key,
        "name": res.display_name,
        "description": res.description,
        "image": catalog.images[res.image].ref,
        "cpu": format_cpu(res.cpu_request) + (f" (up to {format_cpu(res.cpu_limit)})" if res.cpu_limit is not None else ""),
        "memory": str(res.memory_request) + (f" (up to {res.memory_limit})" if res.memory_limit is not None else ""),
        "gpu": _gpu_text(res.gpu) if res.gpu else None,
        "accelerators": [
            {"key": a, "name": catalog.accelerators[a].display_name, "description": catalog.accelerators[a].description,
             "gpu": _accelerator_text(catalog.accelerators[a]),
             "image": catalog.images[res.overrides[a].image].ref if a in res.overrides and res.overrides[a].image else None}
            for a in res.accelerators
        ],
        "limit": limit,
        "limit_text": duration(limit),
        "team": _team_line(catalog.teams[team_key]) if team_key else None,
    }


def page_view(catalog, access, local_mode: bool, staff: bool = False) -> dict:
    """What the page around the cards shows for one set of teams (no choice, no quota figures)."""
    groups: dict = {}
    for res in access.resources:
        groups.setdefault(res.category or "Environments", []).append(res)
    limits = [catalog.resource_limit_minutes(res) for res in access.resources]
    longest = max(limits, default=catalog.sessions.max_minutes)
    default = min(catalog.sessions.default_minutes, longest)
    lengths = sorted({m for m in LENGTHS if m <= longest} | {default} | set(limits))
    quotas = [{**_team_line(team), "key": key, "servers": team.max_servers, "gpus": team.max_gpus, "budgeted": bool(team.budgets)}
              for key, team in ((k, catalog.teams[k]) for k in access.teams)
              if team.max_servers is not None or team.max_gpus is not None or team.budgets]
    return {
        "groups": list(groups.items()),
        "lengths": [{"minutes": m, "text": duration(m)} for m in lengths],
        "default_minutes": default,
        "quotas": quotas,
        "empty": not access.resources,
        "local_mode": local_mode,
        "staff": staff,  # admins get "copy link to this choice" (a launch link, launchlinks.py)
    }


@dataclass
class Page:
    """One set of teams' page: `parts` joined is the HTML once the slots (indexes into parts) are filled."""

    access: object  # catalog.access.Access
    parts: list
    slots: dict  # ("res", resource) / ("acc", resource, accelerator) / ("minutes", m) / ("used"|"left", team, kind) -> index
    # (team key, ((kind, max, index of "used", index of "left"), ...), the fills when it holds nothing) for each team
    # with a quota figure
    quotas: tuple
    budgeted: tuple  # (team key, index of its cell) for the page's teams with a GPU- or CPU-hour budget (filled per request)
    lengths: frozenset
    default_minutes: int
    # The latest request's filled slots and the HTML they gave: the next request with the same choice and figures
    # (most are: quota and budget figures change every few minutes) gets that string, not another join.
    latest: tuple = ((), "")


class PageCache:
    """Cards and pages of one catalog."""

    def __init__(self, catalog):
        self.catalog = catalog
        self.cards: dict = {}  # (resource key, charged team key or None) -> (texts, specs)
        self.pages: OrderedDict = OrderedDict()  # (teams, admin, local_mode) -> Page, least recently used first
        self.people: dict = {}  # Person -> (teams, admin): what access.teams_of and is_admin say (pure functions of both)
        # team -> (budget lines, their cell): `budgets(team)` gives the very same list while the team's figures stay
        # (usage/budget.py overview of a team that runs nothing), and that list gets its cell without another look.
        self.budget_cells: dict = {}
        # team -> (the ledger's version, the cell) of a team with no open or recent record (usage/ledger.py stamp): while
        # the version stays, its cell stays, and the page asks nothing about its budget.
        self.still_cells: dict = {}

    def card(self, res, team_key) -> tuple:
        key = (res.key, team_key)
        if key not in self.cards:
            macro = _env().get_template("launch_card.html").module.card
            self.cards[key] = _split(lambda slot: macro(card_view(self.catalog, res, team_key), slot))
        return self.cards[key]

    def page_for(self, person, local_mode: bool) -> Page:
        who = self.people.get(person)
        if who is None:
            if len(self.people) >= MAX_PEOPLE:
                self.people.clear()
            who = self.people[person] = (teams_of(self.catalog, person), is_admin(self.catalog, person))
        return self.page(*who, local_mode)

    def page(self, teams: tuple, admin: bool, local_mode: bool) -> Page:
        key = (teams, admin, local_mode)
        page = self.pages.get(key)
        if page is None:
            page = self.pages[key] = self._build(access_of(self.catalog, teams, admin), local_mode, admin)
            if len(self.pages) > MAX_TEAM_SETS:
                self.pages.popitem(last=False)
        else:
            self.pages.move_to_end(key)
        return page

    def _build(self, access, local_mode: bool, staff: bool = False) -> Page:
        catalog = self.catalog
        view = page_view(catalog, access, local_mode, staff)
        texts, specs = _split(lambda slot: _env().get_template("launch.html").render(slot=slot, **view))
        parts, slots = [texts[0]], {}
        for spec, text in zip(specs, texts[1:], strict=True):
            if spec[0] == "card":
                res = spec[1]
                card_texts, card_specs = self.card(res, access.charged_team.get(res.key))
                parts.append(card_texts[0])
                for card_spec, card_text in zip(card_specs, card_texts[1:], strict=True):
                    slots[(card_spec[0], res.key, *card_spec[1:])] = len(parts)
                    parts += ("", card_text)
                parts.append(text)
            else:
                slots[spec] = len(parts)
                parts += ("", text)
        quotas = tuple((q["key"], cells, _quota_fills(cells, NONE_HELD)) for q in view["quotas"] if (cells := tuple(
            (kind, q[kind], slots[("used", q["key"], kind)], slots[("left", q["key"], kind)])
            for kind in ("servers", "gpus") if q[kind] is not None)))
        lengths = frozenset(length["minutes"] for length in view["lengths"])
        budgeted = tuple((q["key"], slots[("budget", q["key"])]) for q in view["quotas"] if q["budgeted"])
        return Page(access, parts, slots, quotas, budgeted, lengths, view["default_minutes"])


def _quota_fills(cells: tuple, counts) -> tuple:
    """A team's quota figures as (index, text) fills: used and left of each kind."""
    out: list = []
    for kind, most, used_at, left_at in cells:
        used = getattr(counts, kind) if counts else 0
        out += ((used_at, gpu_text(used)), (left_at, gpu_text(max(most - used, 0))))  # a DRA share counts its fraction
    return tuple(out)


_cache: PageCache | None = None


def cache_for(catalog) -> PageCache:
    global _cache
    if _cache is None or _cache.catalog is not catalog:
        _cache = PageCache(catalog)
    return _cache


def budget_text(lines: list[dict]) -> str:
    """A team's budget cell: what is left in the window, and how long a 1-GPU (1-core) session started now may run."""
    return _budget_cell(tuple((b["unit"], b["left"], b["amount"], b["days"], b["minutes_for_one"]) for b in lines))


@functools.lru_cache(maxsize=4096)
def _budget_cell(lines: tuple) -> str:
    """budget_text's sentences for the numbers shown (rounded: they change every few minutes, not per request),
    kept: formatting 20 teams' cells was most of what a launch page cost on top of the cached page."""
    return "<br>".join(html.escape(
        f"{left} of {amount} {unit} left (last {days} days); a session on 1 "
        f"{'GPU' if unit == 'GPU-hours' else 'CPU core'} started now ends after at most {duration(minutes)}")
        for unit, left, amount, days, minutes in lines) or "no limit"


def render(catalog, person, usage=None, previous=None, local_mode=False, budgets=None, queue_note=None, budget_stamp=None) -> str:
    """The page for `person`; `usage(team)` gives the quota figures, `budgets(team)` the budget lines
    (teamhub/usage/budget.py), `previous` the choice to preselect (after a refused start: what the person
    had chosen), `queue_note(team, accelerator)` the sentence for a choice that would wait in line (the GPU queue),
    `budget_stamp` the usage ledger's stamp (usage/ledger.py; None: every budget is asked)."""
    page = cache_for(catalog).page_for(person, local_mode)
    previous = previous or {}
    filled: list = []  # (index into page.parts, text)

    def fill(slot, text):
        index = page.slots.get(slot)
        if index is not None:
            filled.append((index, text))

    chosen = previous.get("resource") if page.access.allows(str(previous.get("resource"))) else None
    if chosen is None and page.access.resources:
        chosen = page.access.resources[0].key
    if chosen is not None:
        fill(("res", chosen), " checked")
        accelerators = catalog.resources[chosen].accelerators if chosen in catalog.resources else ()
        wanted = previous.get("accelerator")
        if wanted:  # an accelerator the resource does not offer checks none (the page's script then picks the first)
            fill(("acc", chosen, wanted if wanted in accelerators else None), " checked")
        elif accelerators:
            fill(("acc", chosen, accelerators[0]), " checked")
    try:
        minutes = int(previous.get("sessionMinutes") or page.default_minutes)
    except (TypeError, ValueError):
        minutes = page.default_minutes
    fill(("minutes", minutes if minutes in page.lengths else page.default_minutes), " selected")
    for team, cells, idle in page.quotas:
        counts = usage(team) if usage else None
        filled += idle if counts is None or counts is NONE_HELD else _quota_fills(cells, counts)
    add = filled.append
    cells, still = cache_for(catalog).budget_cells, cache_for(catalog).still_cells
    version, moving = budget_stamp if budget_stamp is not None else (None, ())
    for team, at in page.budgeted:
        kept = still.get(team) if version is not None and team not in moving else None
        if kept is not None and kept[0] == version:
            add((at, kept[1]))
            continue
        lines = budgets(team) if budgets else []
        cell = cells.get(team)
        if cell is None or cell[0] is not lines:
            cell = cells[team] = (lines, budget_text(lines))
        if version is not None and team not in moving:
            still[team] = (version, cell[1])
        add((at, cell[1]))
    if queue_note is not None:
        for res in page.access.resources:
            for kind in res.accelerators:
                note = queue_note(page.access.charged_team.get(res.key), kind)
                if note:
                    fill(("queue", res.key, kind), f'<span class="th-queue">{html.escape(note)}</span>')
    filled_key = tuple(filled)
    if page.latest[0] == filled_key:
        return page.latest[1]
    parts = page.parts.copy()
    for index, text in filled:
        parts[index] = text
    page.latest = (filled_key, "".join(parts))
    return page.latest[1]


def options_form(spawner):
    """`c.Spawner.options_form`: called by JupyterHub whenever the launch page is shown. The page itself when the
    person is known without auth state (local accounts): JupyterHub then awaits no task for it; else a coroutine
    that reads the provider's groups from the auth state first (JupyterHub awaits either)."""
    from ..auth import person_for, person_now

    person = person_now(spawner.user)
    if person is not None:
        return _form(spawner, person)

    async def with_auth_state():
        return _form(spawner, await person_for(spawner.user))

    return with_auth_state()


def _form(spawner, person) -> str:
    from ..usage.record import budget_overview, budget_stamp
    from . import queueing
    from .launchhandler import hidden_fields

    rt = spawner.teamhub
    # After a refused start (quota, too long, ...) the page comes back with the refusal: keep what the person
    # chose, so pressing Start again never silently starts another environment.
    # A launch link (launchhandler.py) preselects its choice and adds its repository as hidden fields, once.
    link, spawner.teamhub_link = getattr(spawner, "teamhub_link", None), None
    previous = link or getattr(spawner, "teamhub_refused_request", None) or spawner.user_options or {}
    now = clock.now()  # one clock reading for every team's budget line
    counts = rt.quota.by_team()  # one pass over the holds for every team's figures
    page = render(rt.catalog, person, lambda team: counts.get(team, NONE_HELD), previous, local_mode=rt.mode == "local",
                  budgets=lambda team: budget_overview(rt, team, now), queue_note=queueing.note_for(rt.catalog),
                  budget_stamp=budget_stamp(rt, now))
    return page + str(hidden_fields(link)) if link else page  # str: Markup + str would escape the page
