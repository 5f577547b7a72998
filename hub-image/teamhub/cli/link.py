"""`teamhub link`: print a launch link (issue 17) for course staff, checked against the values first.

    teamhub link config/values.yaml --resource course-cv --accelerator strix-halo --repo URL --branch main --open week3/lab.ipynb

The link is checked like the hub checks it (teamhub.hub.launchlinks and catalog.access), as far as it does not
depend on who opens it: the resource and accelerator exist, the session fits the resource's limit, the
repository is on `launchLinks.allowedRepos`, the path stays inside the repository. Exit 0 printed, 1 refused,
2 unreadable values or no public URL.
"""

from __future__ import annotations

import sys

from ..catalog.access import RequestRefused, access_of, check_request
from ..catalog.loader import load
from ..hub import launchlinks


def check_link(checked, fields: dict):
    """The link's checked pull (launchlinks.Pull, None without a repository); RequestRefused with the hub's own
    sentence when the hub would refuse this link to everyone."""
    catalog = checked.catalog
    _, pull = launchlinks.split_request(fields, launchlinks.allowed_repos(checked.values))
    request = {k: fields[k] for k in ("resource", "accelerator", "sessionMinutes") if fields.get(k)}
    res = catalog.resources.get(request.get("resource") or "")
    if res is not None and res.accelerators and "accelerator" not in request:
        request["accelerator"] = res.accelerators[0]  # chosen on the page; judge the rest with the first
    check_request(catalog, None, request, access_of(catalog, (), admin=True))
    return pull


def cmd_link(args) -> int:
    checked = load(args.files)
    if not checked.ok:
        for problem in checked.problems:
            print(problem, file=sys.stderr)
        return 1
    fields = {"resource": args.resource, "accelerator": args.accelerator, "sessionMinutes": args.minutes,
              "repo": args.repo, "branch": args.branch, "open": args.open, "autostart": "1" if args.autostart else None}
    try:
        pull = check_link(checked, fields)
    except RequestRefused as exc:
        print(f"teamhub link: {exc.message}", file=sys.stderr)
        return 1
    if pull is not None:
        fields["repo"] = pull.repo  # the canonical address, as the hub hands it on
    base = (args.hub_url or "").rstrip("/") or launchlinks.public_url(checked.values)
    if not base:
        print("teamhub link: the values give no public address: set launchLinks.publicUrl (or hub.subdomainHost, or an Ingress host), "
              "or pass --hub-url", file=sys.stderr)
        return 2
    print(f"{base}/hub/launch?{launchlinks.link_query(fields)}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("link", help="print a launch link: a resource preselected, optionally a git repository to pull and open")
    p.add_argument("files", nargs="+", metavar="FILE", help="values files (merged in order, like helm -f)")
    p.add_argument("--resource", required=True, help="the resource key to preselect")
    p.add_argument("--accelerator", help="the accelerator key (resources with a choice of accelerators)")
    p.add_argument("--minutes", type=int, help="the session length to preselect, in minutes")
    p.add_argument("--repo", help="a git repository (on launchLinks.allowedRepos) to pull with nbgitpuller")
    p.add_argument("--branch", help=f"the branch to pull (default {launchlinks.DEFAULT_BRANCH})")
    p.add_argument("--open", help="a file of the repository to open, e.g. week3/lab.ipynb")
    p.add_argument("--autostart", action="store_true", help="start at once when the person may and nothing needs choosing")
    p.add_argument("--hub-url", help="the hub's public address (default: launchLinks.publicUrl, else the Ingress host)")
    p.set_defaults(func=cmd_link)
