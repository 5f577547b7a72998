{{/* What every pod of the chart shares: image references, pull secrets, placement, Pod Security "restricted" contexts, numbers as text. */}}

{{/*
The one way an image is referenced: `name`, `name:tag`, `name@digest` or `name:tag@digest` (the tag kept for
people; with a digest the node pulls exactly that). The hub's Python twin is teamhub.catalog.image_ref.
include "teamhub.image.ref" (dict "name" ... "tag" ... "digest" ...)
*/}}
{{- define "teamhub.image.ref" -}}
{{- $ref := .name -}}
{{- if .tag -}}{{- $ref = printf "%s:%s" $ref .tag -}}{{- end -}}
{{- if .digest -}}{{- $ref = printf "%s@%s" $ref .digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{/*
A pod's imagePullSecrets from one or more lists of Secret names, plus the Secret the chart creates from
imagePullSecret (duplicates dropped, order kept), or nothing when there are none. Every pod of the chart
uses it: include "teamhub.imagePullSecrets" (dict "ctx" . "lists" (list $a $b))
*/}}
{{- define "teamhub.imagePullSecrets" -}}
{{- $names := list -}}
{{- range $list := .lists -}}{{- $names = concat $names ($list | default list) -}}{{- end -}}
{{- if .ctx.Values.imagePullSecret.create -}}
{{- $names = append $names (include "teamhub.imagePullSecret.name" .ctx) -}}
{{- end -}}
{{- with $names | uniq }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
Where a pod of the chart runs and how it ranks: nodeSelector, affinity, tolerations and priorityClassName
of one component's values (hub, proxy): include "teamhub.placement" .Values.hub | nindent 6
*/}}
{{- define "teamhub.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
The operator's containers (hub.extraContainers, hub.initContainers) as written, with the chart's
restricted security context filling every field they leave out, so the pod still meets Pod Security
"restricted" unless the operator deliberately says otherwise: include "teamhub.restrictedContainers" $list
*/}}
{{- define "teamhub.restrictedContainers" -}}
{{- $restricted := include "teamhub.containerSecurityContext" . | fromYaml -}}
{{- $out := list -}}
{{- range . -}}
{{- $c := deepCopy . -}}
{{- $_ := set $c "securityContext" (merge (deepCopy ($c.securityContext | default dict)) (deepCopy $restricted)) -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The labels the hub puts on every user pod (env TEAMHUB_USER_POD_LABELS); NetworkPolicies select them. */}}
{{- define "teamhub.userPodLabels" -}}
{{ include "teamhub.selectorLabels" (list . "singleuser-server") }}
{{- end -}}

{{/* Pod and container security contexts meeting the Pod Security Standard "restricted". */}}
{{- define "teamhub.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "teamhub.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- /* A quantity or count as text: YAML numbers reach templates as floats, "2" not "2.0" or "2e+00". */ -}}
{{- define "teamhub.number" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- end -}}
