{{/* The hub: its image, data volume, kept claims, environment, inputs (the pod's checksum) and /etc/teamhub volume. */}}

{{- define "teamhub.hub.image" -}}
{{- $img := .Values.hub.image -}}
{{- include "teamhub.image.ref" (dict "name" $img.name "tag" ($img.tag | default .Chart.AppVersion) "digest" $img.digest) -}}
{{- end -}}

{{/* The claim holding the hub's data folder (/srv/teamhub/data): the SQLite volume, the operator's claim or the chart's. */}}
{{- define "teamhub.hub.dataClaim" -}}
{{- $db := .Values.hub.db -}}
{{- if eq $db.type "sqlite-pvc" -}}
{{- include "teamhub.hub.name" . }}-db
{{- else -}}
{{- $db.backupVolume.existingClaim | default (printf "%s-data" (include "teamhub.hub.name" .)) -}}
{{- end -}}
{{- end -}}

{{/* A PVC of the hub kept on uninstall: include "teamhub.hub.keptClaim" (dict "ctx" . "name" .. "capacity" .. "storageClass" ..) */}}
{{- define "teamhub.hub.keptClaim" -}}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .name }}
  labels:
    {{- include "teamhub.componentLabels" (list .ctx "hub") | nindent 4 }}
  {{- include "teamhub.annotations" (list .ctx (dict "helm.sh/resource-policy" "keep")) | nindent 2 }}
spec:
  accessModes: [ReadWriteOnce]
  {{- with .storageClass }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ .capacity | quote }}
{{- end -}}

{{- /*
The hub container's environment, shared by the hub Deployment and its pre-upgrade check Job, so the check
sees what the hub will see: include "teamhub.hub.env" (dict "ctx" . "generatedSecrets" BOOL
"dbPasswordSecret" NAME). generatedSecrets: the proxy token, cookie secret and crypt key (the check needs none
of them, and before the first install they do not exist). dbPasswordSecret: the Secret whose key `password`
holds hub.db.password.
*/ -}}
{{- define "teamhub.hub.env" -}}
{{- $ctx := .ctx -}}
{{- $db := $ctx.Values.hub.db -}}
{{- $secrets := include "teamhub.secrets.name" $ctx -}}
- name: TEAMHUB_MODE
  value: kubernetes
- name: TEAMHUB_VALUES
  value: /etc/teamhub/values.yaml
- name: TEAMHUB_DATA_DIR
  value: /srv/teamhub/data
- name: TEAMHUB_PROXY_API_URL
  value: http://{{ include "teamhub.proxyApi.name" $ctx }}:8001
- name: TEAMHUB_PROXY_PEERS  # the proxy pods' addresses (headless Service): see auth/clientaddr.py
  value: {{ include "teamhub.proxyPeers.name" $ctx }}
- name: TEAMHUB_HUB_CONNECT_URL
  value: http://{{ include "teamhub.hub.name" $ctx }}{{ if include "teamhub.userNamespace.apart" $ctx }}.{{ $ctx.Release.Namespace }}{{ end }}:8081  # servers in singleuser.namespace: the hub's namespace
- name: TEAMHUB_USER_POD_LABELS
  value: {{ include "teamhub.userPodLabels" $ctx | fromYaml | toJson | quote }}
- name: TEAMHUB_USER_SCHEDULER  # for catalog resources with userScheduler (templates/user-scheduler/)
  value: {{ include "teamhub.userScheduler.name" $ctx }}
{{- range $method := list "github" "oidc" }}
{{- with (index $ctx.Values.auth $method).existingSecret }}
- name: TEAMHUB_{{ upper $method }}_CLIENT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ .name }}, key: {{ .key | quote }}}
{{- end }}
{{- end }}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- if $.generatedSecrets }}
- name: CONFIGPROXY_AUTH_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ $secrets }}, key: proxy-token}
- name: JPY_COOKIE_SECRET
  valueFrom:
    secretKeyRef: {name: {{ $secrets }}, key: cookie-secret}
- name: JUPYTERHUB_CRYPT_KEY
  valueFrom:
    secretKeyRef: {name: {{ $secrets }}, key: crypt-key}
{{- if $ctx.Values.metrics.serviceMonitor.enabled }}
- name: TEAMHUB_METRICS_TOKEN  # the token of the hub service with only read:metrics (teamhub/usage/scrape.py)
  valueFrom:
    secretKeyRef: {name: {{ $secrets }}, key: metrics-token}
{{- end }}
{{- end }}
{{- if eq $db.type "postgres" }}
{{- if $db.existingSecret }}
- name: TEAMHUB_DB_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $db.existingSecret.name }}, key: {{ $db.existingSecret.key | quote }}}
{{- else if $db.password }}
- name: TEAMHUB_DB_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $.dbPasswordSecret }}, key: password}
{{- end }}
{{- end }}
{{- range $name := keys $ctx.Values.hub.extraEnv | sortAlpha }}
{{- $value := index $ctx.Values.hub.extraEnv $name }}
- name: {{ $name }}
{{- if kindIs "map" $value }}
  valueFrom:
    {{- toYaml $value.valueFrom | nindent 4 }}
{{- else }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
What the hub reads from its values (at start only), hashed into the hub pod's checksum annotation, so a
change of anything else (proxy, pullers, policies, the chart's own objects) leaves the Recreate hub running:
the sections the schema marks `x-read-by: hub`, hub.db (its hub-read keys and the volume the hub mounts) and
the Ingress hosts, from which teamhub/hub/launchlinks.py builds the public address. Everything else the hub
gets (image, env, volumes, placement) is in its pod template. tests/chart/test_hub_restarts.py fails when
the schema marks something this list lacks.
*/}}
{{- define "teamhub.hub.inputs" -}}
{{- $v := .Values -}}
{{- toYaml (dict
      "sections" (pick $v "auth" "branding" "catalog" "sessions" "launchLinks" "singleuser" "queue" "gpuMetrics")
      "db" $v.hub.db
      "subdomainHost" $v.hub.subdomainHost
      "baseUrl" $v.hub.baseUrl
      "ingress" (pick $v.ingress "enabled" "hosts" "tls")) -}}
{{- end -}}

{{- /* The hub's /etc/teamhub volume (values file, release revision, local users), for the hub and its
pre-upgrade check: include "teamhub.hub.valuesVolume" (dict "ctx" . "secret" VALUES_SECRET_NAME) */ -}}
{{- define "teamhub.hub.valuesVolume" -}}
projected:
  sources:
    - secret:
        name: {{ .secret }}
        items:
          - {key: values.yaml, path: values.yaml}
          # read at start, not an env var: the pod template, and so the hub, would change on every upgrade
          - {key: release-revision, path: release-revision}
    {{- with (.ctx.Values.auth.local).existingSecret }}
    - secret:
        name: {{ .name }}
        items:
          - {key: {{ .key | quote }}, path: local-users.yaml}
    {{- end }}
{{- end -}}
