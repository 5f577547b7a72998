{{/* Where each catalog resource runs: read by the prepuller (_prepull.tpl) and the admission policy (_admission.tpl). */}}

{{/*
Where and with what each resource runs: one placement per resource, or per resource x accelerator, in
resource key order. The template twin of teamhub.catalog.placement.place(), the spawner's rule (image with the accelerator's
override, node selector merged resource < accelerator < override, tolerations in that order without
repeats, the GPU of the accelerator or the resource); the prepuller and the admission policy read it, and
tests/chart/test_admission_params.py holds it equal to the Python for every values file. Output (JSON):
  [{"resource": "course-cv", "accelerator": "strix-halo" or "", "image": "<image key>",
    "nodeSelector": {...}, "tolerations": [...], "gpu": {"resource": ..., "count": ...} or {},
    "env": {...} (merged like the node selector)}]
*/}}
{{- define "teamhub.catalog.placements" -}}
{{- $cat := .Values.catalog -}}
{{- $accs := $cat.accelerators -}}
{{- $resources := $cat.resources -}}
{{- $out := list -}}
{{- range $rkey := keys $resources | sortAlpha -}}
{{- $r := index $resources $rkey -}}
{{- $rns := $r.nodeSelector | default dict -}}
{{- $rtol := $r.tolerations | default list -}}
{{- if $r.accelerators -}}
{{- range $akey := $r.accelerators -}}
{{- $a := index $accs $akey | default dict -}}
{{- $o := index ($r.acceleratorOverrides | default dict) $akey | default dict -}}
{{- $ns := merge (deepCopy ($o.nodeSelector | default dict)) (deepCopy ($a.nodeSelector | default dict)) (deepCopy $rns) -}}
{{- $tol := concat $rtol ($a.tolerations | default list) ($o.tolerations | default list) | uniq -}}
{{- $env := merge (deepCopy ($o.env | default dict)) (deepCopy ($a.env | default dict)) (deepCopy ($r.env | default dict)) -}}
{{- $out = append $out (dict "resource" $rkey "accelerator" $akey "image" ($o.image | default $r.image) "nodeSelector" $ns "tolerations" $tol "gpu" ($a.gpu | default dict) "devices" ($a.devices | default dict) "env" $env) -}}
{{- end -}}
{{- else -}}
{{- $out = append $out (dict "resource" $rkey "accelerator" "" "image" $r.image "nodeSelector" $rns "tolerations" $rtol "gpu" ($r.gpu | default dict) "devices" dict "env" ($r.env | default dict)) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
