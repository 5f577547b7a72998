{{- /*
User servers in their own namespace (singleuser.namespace, issue 26). Kueue's pod webhook fails closed in the
namespace it manages, so with the queue on the hub, proxy and pullers stay in the release namespace and only user
servers live in singleuser.namespace. What concerns user pods follows them there: the hub's Role and RoleBinding,
the user servers' NetworkPolicy, the admission policy's namespace selector, the image pull secret. Empty: the
release namespace, and every object renders exactly as before.
*/ -}}

{{/* The namespace user servers run in. */}}
{{- define "teamhub.userNamespace" -}}
{{- .Values.singleuser.namespace | default .Release.Namespace -}}
{{- end -}}

{{/* Whether user servers live apart from the release ("true" or empty). */}}
{{- define "teamhub.userNamespace.apart" -}}
{{- if and .Values.singleuser.namespace (ne .Values.singleuser.namespace .Release.Namespace) }}true{{ end -}}
{{- end -}}

{{/* A `namespace:` line for metadata of an object that belongs beside the user servers; nothing when they live
in the release namespace (helm install sets it then). */}}
{{- define "teamhub.userNamespace.metadata" -}}
{{- if include "teamhub.userNamespace.apart" . }}
namespace: {{ .Values.singleuser.namespace }}
{{- end -}}
{{- end -}}

{{/*
A NetworkPolicy peer: pods with `labels` (a YAML map) in namespace `ns`, written for a policy living in `here`.
Same namespace: a podSelector alone; another: with its namespaceSelector (a podSelector alone means the policy's
own namespace). include "teamhub.networkPolicy.peer" (dict "labels" $yaml "ns" $ns "here" $here)
*/}}
{{- define "teamhub.networkPolicy.peer" -}}
{{- if ne .ns .here -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .ns | quote }}
  podSelector:
    matchLabels:
      {{- .labels | nindent 6 }}
{{- else -}}
- podSelector:
    matchLabels:
      {{- .labels | nindent 6 }}
{{- end -}}
{{- end -}}
