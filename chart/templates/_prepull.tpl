{{/* The image prepuller: its plan from the catalog's placements, the hook's share of it, its record and DaemonSets. */}}

{{/*
The prepuller's plan: the chart's copy of teamhub.catalog.placement.placements(), which owns the rule and is
built on the spawner's own placement (Helm cannot call Python). tests/chart/test_prepull_placements.py renders
every values file and fails when the DaemonSets and placements() disagree.

Every image a resource uses (its own image, or per accelerator the override's image) is pulled once,
except images with prePull: false; prePuller.extraImages are added. Each image is pulled only on the
nodes that can run it: the union of its placements' nodeSelectors (one node-affinity term each; a
placement without nodeSelector means every node) and the union of their tolerations. Images with the
same targeting share one puller DaemonSet. Output (JSON):
  {"<group id>": {"terms": [{label: value}], "tolerations": [...], "pullSecrets": [...],
                  "images": [{"key": "scipy", "ref": "quay.io/...:tag", "pullPolicy": "IfNotPresent"}]}}
*/}}
{{- define "teamhub.prepull.plan" -}}
{{- $images := .Values.catalog.images -}}
{{- $uses := dict -}}
{{- range $p := include "teamhub.catalog.placements" . | fromJsonArray -}}
{{- $img := index $images $p.image | default dict -}}
{{- if and $img.name (not (and (hasKey $img "prePull") (not $img.prePull))) -}}
{{- $_ := set $uses $p.image (append (get $uses $p.image | default list) $p) -}}
{{- end -}}
{{- end -}}
{{- $groups := dict -}}
{{- $all := list -}}
{{- range $ikey := keys $uses | sortAlpha -}}
{{- $img := index $images $ikey -}}
{{- $all = append $all (dict "key" $ikey "img" $img "placements" (index $uses $ikey)) -}}
{{- end -}}
{{- $extra := .Values.prePuller.extraImages -}}
{{- range $ikey := keys $extra | sortAlpha -}}
{{- $img := index $extra $ikey -}}
{{- $p := dict "nodeSelector" ($img.nodeSelector | default dict) "tolerations" ($img.tolerations | default list) -}}
{{- $all = append $all (dict "key" $ikey "img" $img "placements" (list $p)) -}}
{{- end -}}
{{- range $entry := $all -}}
{{- $everywhere := false -}}
{{- $terms := list -}}
{{- $tols := list -}}
{{- range $p := $entry.placements -}}
{{- if $p.nodeSelector -}}
{{- $terms = append $terms $p.nodeSelector -}}
{{- else -}}
{{- $everywhere = true -}}
{{- end -}}
{{- $tols = concat $tols $p.tolerations -}}
{{- end -}}
{{- if $everywhere -}}{{- $terms = list -}}{{- end -}}
{{- $target := dict "terms" (uniq $terms) "tolerations" (uniq $tols) -}}
{{- $gid := toJson $target | sha256sum | trunc 8 -}}
{{- $group := get $groups $gid | default (merge (dict "images" list "pullSecrets" list) $target) -}}
{{- $img := $entry.img -}}
{{- $ref := include "teamhub.image.ref" $img -}}
{{- $seen := false -}}
{{- range $group.images -}}{{- if eq .ref $ref -}}{{- $seen = true -}}{{- end -}}{{- end -}}
{{- if not $seen -}}
{{- $_ := set $group "images" (append $group.images (dict "key" $entry.key "ref" $ref "pullPolicy" ($img.pullPolicy | default "IfNotPresent"))) -}}
{{- $_ := set $group "pullSecrets" (concat $group.pullSecrets ($img.pullSecrets | default list) | uniq | sortAlpha) -}}
{{- end -}}
{{- $_ := set $groups $gid $group -}}
{{- end -}}
{{- toJson $groups -}}
{{- end -}}

{{/*
What the hook puller pulls: the plan minus what the deployed release already pulls, as recorded in its
ConfigMap (looked up in the cluster; under `helm template` nothing is found, so everything is pulled).
Groups left without images are dropped. Same format as the plan.
*/}}
{{- define "teamhub.prepull.hookPlan" -}}
{{- $plan := include "teamhub.prepull.plan" . | fromJson -}}
{{- $record := lookup "v1" "ConfigMap" .Release.Namespace (include "teamhub.prepuller.recordName" .) -}}
{{- $pulled := list -}}
{{- if $record -}}
{{- $pulled = (get ($record.data | default dict) "pulled.json" | default "[]") | fromJsonArray -}}
{{- end -}}
{{- $out := dict -}}
{{- range $gid, $group := $plan -}}
{{- $new := list -}}
{{- range $group.images -}}
{{- if not (has (printf "%s/%s" $gid .ref) $pulled) -}}
{{- $new = append $new . -}}
{{- end -}}
{{- end -}}
{{- if $new -}}
{{- $_ := set $out $gid (merge (dict "images" $new) (omit $group "images")) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The record of what a release pulls: a sorted JSON list of "<group id>/<image ref>". */}}
{{- define "teamhub.prepull.record" -}}
{{- $plan := include "teamhub.prepull.plan" . | fromJson -}}
{{- $out := list -}}
{{- range $gid, $group := $plan -}}
{{- range $group.images -}}
{{- $out = append $out (printf "%s/%s" $gid .ref) -}}
{{- end -}}
{{- end -}}
{{- $out | sortAlpha | toJson -}}
{{- end -}}

{{/*
A puller pod's placement: the group's node terms (one per catalog node selector) ANDed with the operator's
prePuller.affinity node terms (each pair joined into one term), its other affinity as written, the group's
tolerations then prePuller.tolerations, prePuller.nodeSelector and prePuller.priorityClassName.
include "teamhub.prepull.placement" (dict "ctx" . "group" $group)
*/}}
{{- define "teamhub.prepull.placement" -}}
{{- $pp := .ctx.Values.prePuller -}}
{{- $op := deepCopy $pp.affinity -}}
{{- $nodeAffinity := $op.nodeAffinity | default dict -}}
{{- $opTerms := (($nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution | default dict).nodeSelectorTerms) | default list -}}
{{- $groupTerms := list -}}
{{- range $term := .group.terms -}}
{{- $exprs := list -}}
{{- range $k := keys $term | sortAlpha -}}
{{- $exprs = append $exprs (dict "key" $k "operator" "In" "values" (list (index $term $k))) -}}
{{- end -}}
{{- $groupTerms = append $groupTerms (dict "matchExpressions" $exprs) -}}
{{- end -}}
{{- $terms := $groupTerms -}}
{{- if and $groupTerms $opTerms -}}
{{- $terms = list -}}
{{- range $g := $groupTerms -}}
{{- range $o := $opTerms -}}
{{- $t := deepCopy $o -}}
{{- $_ := set $t "matchExpressions" (concat $g.matchExpressions ($o.matchExpressions | default list)) -}}
{{- $terms = append $terms $t -}}
{{- end -}}
{{- end -}}
{{- else if $opTerms -}}
{{- $terms = $opTerms -}}
{{- end -}}
{{- if $terms -}}
{{- $_ := set $nodeAffinity "requiredDuringSchedulingIgnoredDuringExecution" (dict "nodeSelectorTerms" $terms) -}}
{{- end -}}
{{- if $nodeAffinity -}}{{- $_ := set $op "nodeAffinity" $nodeAffinity -}}{{- end -}}
{{- $placement := dict "nodeSelector" $pp.nodeSelector "affinity" $op "priorityClassName" $pp.priorityClassName
      "tolerations" (concat (.group.tolerations | default list) $pp.tolerations | uniq) -}}
{{- include "teamhub.placement" $placement -}}
{{- end -}}

{{/* A puller DaemonSet: include "teamhub.prepull.daemonset" (dict "ctx" . "gid" $gid "group" $group "kind" "hook|continuous") */}}
{{- define "teamhub.prepull.daemonset" -}}
{{- $ctx := .ctx -}}
{{- $component := printf "%s-puller" .kind -}}
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ include "teamhub.fullname" $ctx }}-{{ .kind }}-puller-{{ .gid }}
  labels:
    {{- include "teamhub.componentLabels" (list $ctx $component) | nindent 4 }}
    teamhub.dev/puller-group: {{ .gid | quote }}
  {{- $hook := dict }}
  {{- if eq .kind "hook" }}
  {{- $hook = dict "helm.sh/hook" "pre-install,pre-upgrade" "helm.sh/hook-weight" "-5" "helm.sh/hook-delete-policy" "before-hook-creation,hook-succeeded" }}
  {{- end }}
  {{- include "teamhub.annotations" (list $ctx $hook) | nindent 2 }}
spec:
  selector:
    matchLabels:
      {{- include "teamhub.selectorLabels" (list $ctx $component) | nindent 6 }}
      teamhub.dev/puller-group: {{ .gid | quote }}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 100%
  template:
    metadata:
      labels:
        {{- include "teamhub.componentLabels" (list $ctx $component) | nindent 8 }}
        teamhub.dev/puller-group: {{ .gid | quote }}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 0
      securityContext:
        {{- include "teamhub.podSecurityContext" 65534 | nindent 8 }}
      {{- include "teamhub.prepull.placement" . | nindent 6 }}
      {{- include "teamhub.imagePullSecrets" (dict "ctx" $ctx "lists" (list .group.pullSecrets $ctx.Values.prePuller.pause.pullSecrets)) | nindent 6 }}
      initContainers:
        {{- range .group.images }}
        - name: {{ printf "pull-%s" .key | trunc 63 | trimSuffix "-" }}
          image: {{ .ref }}
          imagePullPolicy: {{ .pullPolicy }}
          command: ["/bin/sh", "-c", "echo pulled {{ .ref }}"]
          resources:
            {{- toYaml $ctx.Values.prePuller.resources | nindent 12 }}
          securityContext:
            {{- include "teamhub.containerSecurityContext" . | nindent 12 }}
        {{- end }}
      containers:
        - name: pause
          image: {{ include "teamhub.image.ref" $ctx.Values.prePuller.pause }}
          imagePullPolicy: {{ $ctx.Values.prePuller.pause.pullPolicy }}
          resources:
            {{- toYaml $ctx.Values.prePuller.resources | nindent 12 }}
          securityContext:
            {{- include "teamhub.containerSecurityContext" . | nindent 12 }}
{{- end -}}
