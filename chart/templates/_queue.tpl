{{/* The GPU queue (issue 26): Kueue's object names and objects from the catalog. */}}

{{- /* A cluster-wide queue object's name: (list fullname suffix), 63 characters at most (Kueue copies queue
names into pod labels); a longer one keeps 54 and ends with 8 hex of its sha256. teamhub.catalog.queue.name. */ -}}
{{- define "teamhub.queue.name" -}}
{{- $whole := index . 0 -}}
{{- if index . 1 -}}{{- $whole = printf "%s-%s" (index . 0) (index . 1) -}}{{- end -}}
{{- if le (len $whole) 63 -}}{{ $whole }}{{- else -}}{{ printf "%s-%s" (trunc 54 $whole | trimSuffix "-") (sha256sum $whole | trunc 8) }}{{- end -}}
{{- end -}}

{{/*
Kueue's objects for the GPU queue (issue 26), the chart's copy of teamhub.catalog.queue.objects() (Helm cannot
call Python; tests/chart/test_queue_objects.py holds the two equal for every values file with the queue on):
a ResourceFlavor per accelerator kind (nodeLabels = the kind's nodeSelector), one Cohort holding the devices no
team is guaranteed, per team a ClusterQueue (guaranteed devices per kind, borrowing up to its max, preemption
Never everywhere) and a LocalQueue team-<name> in singleuser.namespace. Output (JSON): the objects, in order.
*/}}
{{- define "teamhub.queue.objects" -}}
{{- $full := include "teamhub.fullname" . -}}
{{- $cat := .Values.catalog -}}
{{- $accs := $cat.accelerators -}}
{{- $teams := $cat.teams -}}
{{- $ns := .Values.singleuser.namespace -}}
{{- $api := "kueue.x-k8s.io/v1beta2" -}}
{{- $never := dict "reclaimWithinCohort" "Never" "borrowWithinCohort" (dict "policy" "Never") "withinClusterQueue" "Never" -}}
{{- /* device resource -> its kinds (one resource group each: a flavor belongs to one group only) */ -}}
{{- $byRes := dict -}}
{{- range $k := keys $accs | sortAlpha -}}
{{- $r := (index $accs $k).gpu.resource -}}
{{- $_ := set $byRes $r (append (index $byRes $r | default list) $k) -}}
{{- end -}}
{{- /* team -> kind -> [guaranteed, max]; an unset max is the whole pool */ -}}
{{- $share := dict -}}
{{- range $t, $team := $teams -}}
{{- $per := dict -}}
{{- range $k, $a := $accs -}}
{{- $s := index ((($team.queue | default dict).accelerators) | default dict) $k | default dict -}}
{{- $m := int ($a.capacity | default 0) -}}
{{- if hasKey $s "max" -}}{{- $m = int $s.max -}}{{- end -}}
{{- $_ := set $per $k (list (int ($s.guaranteed | default 0)) $m) -}}
{{- end -}}
{{- $_ := set $share $t $per -}}
{{- end -}}
{{- $out := list -}}
{{- range $k := keys $accs | sortAlpha -}}
{{- $out = append $out (dict "apiVersion" $api "kind" "ResourceFlavor" "metadata" (dict "name" (include "teamhub.queue.name" (list $full $k))) "spec" (dict "nodeLabels" ((index $accs $k).nodeSelector | default dict))) -}}
{{- end -}}
{{- $groups := list -}}
{{- range $r := keys $byRes | sortAlpha -}}
{{- $flavors := list -}}
{{- range $k := index $byRes $r -}}
{{- $free := int ((index $accs $k).capacity | default 0) -}}
{{- range $t, $per := $share -}}{{- $free = sub $free (index (index $per $k) 0) -}}{{- end -}}
{{- $flavors = append $flavors (dict "name" (include "teamhub.queue.name" (list $full $k)) "resources" (list (dict "name" $r "nominalQuota" (toString (max $free 0))))) -}}
{{- end -}}
{{- $groups = append $groups (dict "coveredResources" (list $r) "flavors" $flavors) -}}
{{- end -}}
{{- $out = append $out (dict "apiVersion" $api "kind" "Cohort" "metadata" (dict "name" (include "teamhub.queue.name" (list $full ""))) "spec" (dict "resourceGroups" $groups)) -}}
{{- $locals := list -}}
{{- range $t := keys $teams | sortAlpha -}}
{{- $groups := list -}}
{{- range $r := keys $byRes | sortAlpha -}}
{{- $flavors := list -}}
{{- range $k := index $byRes $r -}}
{{- $g := index (index (index $share $t) $k) 0 -}}
{{- $m := index (index (index $share $t) $k) 1 -}}
{{- $flavors = append $flavors (dict "name" (include "teamhub.queue.name" (list $full $k)) "resources" (list (dict "name" $r "nominalQuota" (toString $g) "borrowingLimit" (toString (max (sub $m $g) 0))))) -}}
{{- end -}}
{{- $groups = append $groups (dict "coveredResources" (list $r) "flavors" $flavors) -}}
{{- end -}}
{{- $cq := include "teamhub.queue.name" (list $full $t) -}}
{{- $spec := dict "cohortName" (include "teamhub.queue.name" (list $full "")) "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" $ns)) "queueingStrategy" $.Values.queue.queueingStrategy "fairSharing" (dict "weight" (include "teamhub.number" (((index $teams $t).queue | default dict).weight | default 1))) "preemption" $never "resourceGroups" $groups -}}
{{- $out = append $out (dict "apiVersion" $api "kind" "ClusterQueue" "metadata" (dict "name" $cq) "spec" $spec) -}}
{{- $locals = append $locals (dict "apiVersion" $api "kind" "LocalQueue" "metadata" (dict "name" (printf "team-%s" $t) "namespace" $ns) "spec" (dict "clusterQueue" $cq)) -}}
{{- end -}}
{{- toJson (concat $out $locals) -}}
{{- end -}}
