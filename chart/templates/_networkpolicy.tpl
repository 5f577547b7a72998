{{/* NetworkPolicy pieces shared by several policies (the policies themselves are networkpolicies.yaml). */}}

{{/* Egress to the cluster DNS only (one NetworkPolicy egress rule; networkPolicy.dns): port 53 anywhere else
would be a tunnel out of a closed network. */}}
{{- define "teamhub.networkPolicy.dnsEgress" -}}
{{- $dns := .Values.networkPolicy.dns -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $dns.namespace | quote }}
      podSelector:
        matchLabels:
          {{- toYaml ($dns.podLabels | default (dict "k8s-app" "kube-dns")) | nindent 10 }}
    {{- range $dns.cidrs }}
    - ipBlock: {cidr: {{ . | quote }}}
    {{- end }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end -}}

{{/*
A deny-all NetworkPolicy for one kind of puller (all its node groups). The node pulls the images, not the
pod; the init containers only run `echo` from every catalog image, which must not reach anything.
include "teamhub.prepull.networkPolicy" (dict "ctx" . "kind" "hook|continuous" "annotations" {...})
*/}}
{{- define "teamhub.prepull.networkPolicy" -}}
{{- $component := printf "%s-puller" .kind -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "teamhub.fullname" .ctx }}-{{ .kind }}-puller
  labels:
    {{- include "teamhub.componentLabels" (list .ctx $component) | nindent 4 }}
  {{- include "teamhub.annotations" (list .ctx .annotations) | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "teamhub.selectorLabels" (list .ctx $component) | nindent 6 }}
  policyTypes: [Ingress, Egress]
{{- end -}}
