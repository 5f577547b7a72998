{{/* Per-user origins (hub.subdomainHost; the hub reads it in teamhub/values/origins.py): the hub's host name,
without scheme and port; empty when off. People's servers are <name>.<this host>. */}}
{{- define "teamhub.subdomain.host" -}}
{{- regexReplaceAll ":[0-9]+$" (regexReplaceAll "^[a-z]+://" .Values.hub.subdomainHost "") "" -}}
{{- end -}}
{{/* scheme://host[:port] as JupyterHub normalises it (https when no scheme is written); empty when off. */}}
{{- define "teamhub.subdomain.url" -}}
{{- with .Values.hub.subdomainHost -}}{{ if contains "://" . }}{{ . }}{{ else }}https://{{ . }}{{ end }}{{- end -}}
{{- end -}}
