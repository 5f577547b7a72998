{{/*
Where the hub lives on its host (hub.baseUrl, JupyterHub's base_url; the hub reads it in teamhub/hub/config.py):
"/" or "/jupyter/". Its own pages are under <base>hub/, servers under <base>user/<name>/. Every place the chart
names a hub path (probes, the proxy's error page, helm test, the ServiceMonitor, NOTES) goes through these.
*/}}
{{- define "teamhub.baseUrl" -}}
{{- .Values.hub.baseUrl -}}
{{- end -}}

{{/* A path of the hub's own pages: include "teamhub.hubPath" (list . "health") -> /jupyter/hub/health */}}
{{- define "teamhub.hubPath" -}}
{{- printf "%shub/%s" (include "teamhub.baseUrl" (index . 0)) (index . 1) -}}
{{- end -}}

{{/* The base URL as an Ingress or HTTPRoute path prefix: "/" or "/jupyter". Both APIs match prefixes on whole
segments, so "/jupyter" takes /jupyter and /jupyter/... and never /jupyterlab. */}}
{{- define "teamhub.routePrefix" -}}
{{- $base := include "teamhub.baseUrl" . -}}
{{- if eq $base "/" -}}/{{- else -}}{{ trimSuffix "/" $base }}{{- end -}}
{{- end -}}
