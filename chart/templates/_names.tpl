{{/* Names and labels shared by every object the chart renders. */}}
{{/* The chart's name in object names and the app.kubernetes.io/name label: nameOverride, else "teamhub". */}}
{{- define "teamhub.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "teamhub.fullname" -}}
{{- $name := include "teamhub.name" . -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Every object's labels: the recommended ones, then commonLabels (the schema keeps them off the chart's own keys). */}}
{{- define "teamhub.labels" -}}
app.kubernetes.io/name: {{ include "teamhub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: teamhub
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
An object's `annotations:` block: commonAnnotations, then the object's own (which win); nothing when both
are empty. Every object of the chart uses it: include "teamhub.annotations" (list . $own) | nindent 2
*/}}
{{- define "teamhub.annotations" -}}
{{- $ctx := index . 0 -}}
{{- $all := merge (deepCopy (index . 1 | default dict)) (deepCopy $ctx.Values.commonAnnotations) -}}
{{- with $all -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* Labels that select one component's pods: include "teamhub.selectorLabels" (list . "hub") */}}
{{- define "teamhub.selectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "teamhub.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Every label of one component: include "teamhub.componentLabels" (list . "hub") */}}
{{- define "teamhub.componentLabels" -}}
{{ include "teamhub.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "teamhub.hub.name" -}}{{ include "teamhub.fullname" . }}-hub{{- end -}}
{{- define "teamhub.proxy.name" -}}{{ include "teamhub.fullname" . }}-proxy{{- end -}}
{{- define "teamhub.proxyApi.name" -}}{{ include "teamhub.fullname" . }}-proxy-api{{- end -}}
{{- define "teamhub.proxyPeers.name" -}}{{ include "teamhub.fullname" . }}-proxy-peers{{- end -}}
{{- define "teamhub.proxyPublic.name" -}}{{ include "teamhub.fullname" . }}-proxy-public{{- end -}}
{{- define "teamhub.values.name" -}}{{ include "teamhub.fullname" . }}-values{{- end -}}
{{- define "teamhub.prepuller.recordName" -}}{{ include "teamhub.fullname" . }}-prepulled{{- end -}}

{{/* The Secret holding the proxy token, cookie secret, crypt key and metrics token: generated, or the operator's. */}}
{{- define "teamhub.secrets.name" -}}
{{- .Values.hub.existingSecret | default (printf "%s-secrets" (include "teamhub.fullname" .)) -}}
{{- end -}}

{{- define "teamhub.imagePullSecret.name" -}}{{ include "teamhub.fullname" . }}-image-pull-secret{{- end -}}
