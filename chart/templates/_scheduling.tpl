{{/*
Packing and headroom for user servers (scheduling.*): the user scheduler and the user placeholders. The hub learns
the scheduler's name from TEAMHUB_USER_SCHEDULER and sets it on the servers of resources with userScheduler; the
admission policy lets exactly those name it (shape line 16, "teamhub.admission.params").
*/}}
{{- define "teamhub.userScheduler.name" -}}{{ include "teamhub.fullname" . }}-user-scheduler{{- end -}}
{{- define "teamhub.userPlaceholder.name" -}}{{ include "teamhub.fullname" . }}-user-placeholder{{- end -}}
{{/* The placeholders' PriorityClass: cluster-wide, so the namespace is part of its name. */}}
{{- define "teamhub.userPlaceholder.priorityClass" -}}
{{- printf "%s-%s" .Release.Namespace (include "teamhub.userPlaceholder.name" .) | trunc 253 -}}
{{- end -}}

{{/* "true" when some catalog resource asks for the user scheduler: only then does the chart run it. */}}
{{- define "teamhub.userScheduler.wanted" -}}
{{- $on := false -}}
{{- range $key, $r := ((.Values.catalog | default dict).resources | default dict) -}}
{{- if $r.userScheduler -}}{{- $on = true -}}{{- end -}}
{{- end -}}
{{- if $on -}}true{{- end -}}
{{- end -}}

{{/*
The user scheduler's KubeSchedulerConfiguration. One profile, its own name: the fullest node that fits wins
(NodeResourcesFit MostAllocated on CPU and memory, and on the GPUs the catalog uses), and the scores that spread
pods (balanced allocation, the system's default topology spreading) are off, so servers fill one node before the
next and an autoscaler can remove the empty ones. Filters (fit, affinity, taints, volumes, DRA) and preemption are
kube-scheduler's own.
*/}}
{{- define "teamhub.userScheduler.config" -}}
{{- $name := include "teamhub.userScheduler.name" . -}}
{{- $weights := list (dict "name" "cpu" "weight" 1) (dict "name" "memory" "weight" 1) -}}
{{- $gpus := list -}}
{{- range $p := include "teamhub.catalog.placements" . | fromJsonArray -}}
{{- with $p.gpu.resource -}}{{- $gpus = append $gpus . -}}{{- end -}}
{{- end -}}
{{- range $gpus | uniq | sortAlpha -}}{{- $weights = append $weights (dict "name" . "weight" 1) -}}{{- end -}}
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
# with --config, the configuration decides (the --profiling flag is only what scanners look for)
enableProfiling: false
enableContentionProfiling: false
leaderElection:
  leaderElect: true
  resourceLock: leases
  resourceName: {{ $name }}
  resourceNamespace: {{ .Release.Namespace }}
profiles:
  - schedulerName: {{ $name }}
    plugins:
      score:
        disabled:
          - name: NodeResourcesBalancedAllocation
          - name: PodTopologySpread
    pluginConfig:
      - name: NodeResourcesFit
        args:
          scoringStrategy:
            type: MostAllocated
            resources:
              {{- toYaml $weights | nindent 14 }}
      - name: PodTopologySpread
        args:
          defaultingType: List
          defaultConstraints: []
{{- end -}}
