"""The pull guard (issue 23, findings 1 and 3): a Jupyter server extension in the single-user images teamhub
builds, so the allow-list binds every pull, not only the hub's link.

nbgitpuller pulls any repository a request names (`/git-pull?repo=...`, reachable through
`/hub/user-redirect/git-pull?...` by any page that sends the person there) and prints the request's `urlpath`
unescaped in its status page. The guard serves nbgitpuller's pages itself: each request's repository must lie
under an entry of TEAMHUB_ALLOWED_REPOS (JSON list, set by the hub's spawner from `launchLinks.allowedRepos`),
every other field must parse in the link grammar (grammar.py), and the status page is rendered with
autoescaping. It fails closed: the images disable nbgitpuller's own extension (jupyter_server_config.d/
teamhub-pullguard.json), so without the guard there is no /git-pull at all; an unset or unreadable
TEAMHUB_ALLOWED_REPOS allows nothing.

This package imports only the standard library at the top (the hub imports grammar.py); the extension
itself (extension.py) needs jupyter_server and nbgitpuller, which only the single-user server has.
"""

ENV = "TEAMHUB_ALLOWED_REPOS"


def _jupyter_server_extension_points():
    return [{"module": "teamhub.pullguard.extension"}]
