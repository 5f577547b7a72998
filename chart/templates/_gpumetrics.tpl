{{- /*
GPU-aware culling (issue 28): the hub pod's one egress rule to the Prometheus named by gpuMetrics.prometheusUrl,
and nothing else. The URL's host is parsed as teamhub/values/gpumetrics.py `target()` parses it (both are held
equal by tests/chart/test_gpu_metrics_policy.py): an IP address opens that one address (an ipBlock /32, /128 for
IPv6); a Service name <name>.<namespace>.svc[.cluster.local] opens that namespace's pods (narrowed to
gpuMetrics.podSelector), on gpuMetrics.port or the URL's port. Anything else `teamhub validate` refuses, and
so does this helper (fail), so helm never renders a policy that would leave the culler without Prometheus.
*/ -}}
{{- define "teamhub.gpuMetrics.egress" -}}
{{- $gm := .Values.gpuMetrics | default dict -}}
{{- with $gm.prometheusUrl }}
{{- $u := urlParse . -}}
{{- $host := $u.hostname | default (regexReplaceAll ":[0-9]+$" $u.host "") | trimPrefix "[" | trimSuffix "]" -}}
{{- $hostPort := regexFind ":[0-9]+$" (regexReplaceAll "^\\[[^]]*\\]" $u.host "") | trimPrefix ":" -}}
{{- $port := $gm.port | default $hostPort | default (ternary "443" "80" (eq $u.scheme "https")) -}}
{{- $service := regexFind "^[^.]+\\.[^.]+\\.svc(\\.cluster\\.local)?$" $host -}}
- to:  # the Prometheus of gpuMetrics.prometheusUrl: GPU use for the idle culler
    {{- if regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$" $host }}
    - ipBlock: {cidr: {{ printf "%s/32" $host | quote }}}
    {{- else if contains ":" $host }}
    - ipBlock: {cidr: {{ printf "%s/128" $host | quote }}}
    {{- else if $service }}
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ index (splitList "." $host) 1 | quote }}
      {{- with $gm.podSelector }}
      podSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
      {{- end }}
    {{- else }}
    {{- fail (printf "gpuMetrics.prometheusUrl: %q is neither an IP address nor a cluster Service name (<name>.<namespace>.svc)" $host) }}
    {{- end }}
  ports:
    - {port: {{ int $port }}, protocol: TCP}
{{- end }}
{{- end -}}
