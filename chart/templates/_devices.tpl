{{/*
Accelerators by Dynamic Resource Allocation (issue 27): the chart's copy of teamhub.catalog.devices.objects()
(Helm cannot call Python; tests/chart/test_device_objects.py holds the two equal for every values file).
  - a DeviceClass "<fullname>-<key>" per catalog.deviceClasses entry: one CEL selector with the driver and the
    attribute equalities (has() before each, so a device without the attribute does not match and never
    errors), then the operator's own `cel`;
  - a ResourceClaimTemplate "teamhub-<kind>" per accelerator with `devices`, in singleuser.namespace (else the
    release's), with one request "devices": exactly one class, count and capacity share, or firstAvailable.
Output (JSON): the objects, classes in key order, then templates in kind order.
*/}}
{{- define "teamhub.devices.objects" -}}
{{- $full := include "teamhub.fullname" . -}}
{{- $cat := .Values.catalog | default dict -}}
{{- $classes := $cat.deviceClasses | default dict -}}
{{- $accs := $cat.accelerators | default dict -}}
{{- $api := "resource.k8s.io/v1" -}}
{{- $out := list -}}
{{- range $key := keys $classes | sortAlpha -}}
{{- $c := index $classes $key -}}
{{- $attrs := printf "device.attributes[\"%s\"]" $c.driver -}}
{{- $terms := list (printf "device.driver == \"%s\"" $c.driver) -}}
{{- $sel := $c.selectors | default dict -}}
{{- range $a := keys $sel | sortAlpha -}}
{{- $v := index $sel $a -}}
{{- $lit := "" -}}
{{- if kindIs "bool" $v -}}{{- $lit = ternary "true" "false" $v -}}
{{- else if kindIs "string" $v -}}{{- $lit = printf "\"%s\"" $v -}}
{{- else -}}{{- $lit = include "teamhub.number" $v -}}{{- end -}}
{{- $terms = append $terms (printf "has(%s.%s) && %s.%s == %s" $attrs $a $attrs $a $lit) -}}
{{- end -}}
{{- $selectors := list (dict "cel" (dict "expression" (join " && " $terms))) -}}
{{- with $c.cel -}}{{- $selectors = append $selectors (dict "cel" (dict "expression" .)) -}}{{- end -}}
{{- $out = append $out (dict "apiVersion" $api "kind" "DeviceClass" "metadata" (dict "name" (include "teamhub.queue.name" (list $full $key))) "spec" (dict "selectors" $selectors)) -}}
{{- end -}}
{{- $ns := .Values.singleuser.namespace | default .Release.Namespace -}}
{{- range $kind := keys $accs | sortAlpha -}}
{{- with (index $accs $kind).devices -}}
{{- $alts := .firstAvailable | default (list .) -}}
{{- $reqs := list -}}
{{- range $i, $alt := $alts -}}
{{- $class := $alt.deviceClass -}}
{{- if hasKey $classes $class -}}{{- $class = include "teamhub.queue.name" (list $full $class) -}}{{- end -}}
{{- $r := dict "deviceClassName" $class "allocationMode" "ExactCount" "count" (int ($alt.count | default 1)) -}}
{{- with $alt.capacity -}}
{{- $req := dict -}}
{{- range $n, $q := . -}}{{- $_ := set $req $n (include "teamhub.number" $q) -}}{{- end -}}
{{- $_ := set $r "capacity" (dict "requests" $req) -}}
{{- end -}}
{{- $reqs = append $reqs $r -}}
{{- end -}}
{{- $request := dict "name" "devices" -}}
{{- if .firstAvailable -}}
{{- $named := list -}}
{{- range $i, $r := $reqs -}}{{- $named = append $named (merge (dict "name" (printf "alt-%d" $i)) $r) -}}{{- end -}}
{{- $_ := set $request "firstAvailable" $named -}}
{{- else -}}
{{- $_ := set $request "exactly" (first $reqs) -}}
{{- end -}}
{{- $out = append $out (dict "apiVersion" $api "kind" "ResourceClaimTemplate" "metadata" (dict "name" (printf "teamhub-%s" $kind) "namespace" $ns) "spec" (dict "spec" (dict "devices" (dict "requests" (list $request))))) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{- /* The vendor of a kind's `devices` (AMD, NVIDIA, Intel) when every alternative's driver is known to be
that vendor's, else "": teamhub.catalog.devices.vendor. include "teamhub.devices.vendor" (list $ctx $devices) */ -}}
{{- define "teamhub.devices.vendor" -}}
{{- $classes := ((index . 0).Values.catalog | default dict).deviceClasses | default dict -}}
{{- $d := index . 1 -}}
{{- $vendors := dict "gpu.amd.com" "AMD" "gpu.nvidia.com" "NVIDIA" "mig.nvidia.com" "NVIDIA" "gpu.intel.com" "Intel" -}}
{{- $found := list -}}
{{- range $alt := $d.firstAvailable | default (list $d) -}}
{{- $driver := $alt.deviceClass -}}
{{- with index $classes $alt.deviceClass -}}{{- $driver = .driver -}}{{- end -}}
{{- $found = append $found (get $vendors $driver) -}}
{{- end -}}
{{- if eq (len ($found | uniq)) 1 -}}{{ first $found }}{{- end -}}
{{- end -}}

{{- /* The admission policy's parameters for DRA kinds: "devices.<kind>" = its ResourceClaimTemplate, the only
claim its pods may make (teamhub.catalog.admission.params writes the same). Output: a JSON object. */ -}}
{{- define "teamhub.devices.admissionParams" -}}
{{- $out := dict -}}
{{- range $kind, $a := (.Values.catalog | default dict).accelerators | default dict -}}
{{- if $a.devices -}}{{- $_ := set $out (printf "devices.%s" $kind) (printf "teamhub-%s" $kind) -}}{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
