"""Air-gapped installs (issue 29): one folder with the packaged chart, the values and every image the chart
can run, pinned by digest in one OCI image layout; verified file by file and blob by blob, and copied into a
site's registry with a values overlay pointing every image there.

- `imagelist`: which images rendering the chart with given values can run (from `helm template` and the
  catalog), and which values path names each of them.
- `refs`: splitting image references (registry, repository, tag, digest) without a registry client.
- `tools`: running crane (go-containerregistry) for every registry request: TLS, plain HTTP, credentials.
- `layout`: the OCI image layout on disk and the bundle's manifest (`bundle.json`).
- `create`, `verify`, `push`: the three commands (`teamhub bundle ...`, cli/bundle.py).
"""
