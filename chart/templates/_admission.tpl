{{/* The admission policy's parameters, the launch environment it admits, and whether the cluster serves it. */}}

{{/*
The admission policy's parameters (templates/admission/policy.yaml reads them, teamhub.catalog.admission in Python
writes the same from the hub's values; tests/chart/test_admission_params.py holds the two equal). One
ConfigMap key per placement, "<resource>" or "<resource>.<accelerator>" (keys are DNS labels, so "." is
free), whose value is 16 lines, in this order:
  image ref | pullPolicy | pullSecrets (sorted, ",") | cpu request | cpu limit ("" none) | memory request |
  memory limit | gpu "<resource>=<count>" ("" none) | nodeSelector "k=v" (sorted, ",") |
  tolerations "key|operator|value|effect|seconds" (",") | max activeDeadlineSeconds |
  "runAsUser,runAsGroup,fsGroup" | teams granting the resource (sorted, ",") | priorityClassName ("" none) |
  env "NAME=VALUE" (sorted, ","; "\" "\n" "," in values escaped as \\ \n \x2c): GPU visibility, then the catalog's |
  userScheduler "true"/"false" (true: the pod names exactly the chart's user scheduler; else the default one)
plus "volume.<key>" = "claim\nmountPath\nsubPath\nreadOnly" per catalog volume, "home" =
"claimPrefix\npodPrefix\nmountPath" when servers get a home volume, and "_launch-env": the names the hub sets
per start ("teamhub.admission.launchEnv"). Lookups by key keep the CEL cost flat
however large the catalog grows.
*/}}
{{- define "teamhub.admission.params" -}}
{{- $cat := .Values.catalog -}}
{{- $images := $cat.images -}}
{{- $resources := $cat.resources -}}
{{- $teams := $cat.teams -}}
{{- $sessions := .Values.sessions -}}
{{- $base := .Values.singleuser.securityContext -}}
{{- $data := dict -}}
{{- range $p := include "teamhub.catalog.placements" . | fromJsonArray -}}
{{- $r := index $resources $p.resource -}}
{{- $img := index $images $p.image | default dict -}}
{{- $cpu := $r.cpu | default dict -}}
{{- $mem := $r.memory | default dict -}}
{{- $ns := list -}}
{{- range $k, $v := $p.nodeSelector -}}{{- $ns = append $ns (printf "%s=%s" $k $v) -}}{{- end -}}
{{- $tols := list -}}
{{- range $t := $p.tolerations -}}
{{- $secs := "" -}}
{{- if hasKey $t "tolerationSeconds" -}}{{- $secs = include "teamhub.number" $t.tolerationSeconds -}}{{- end -}}
{{- $tols = append $tols (printf "%s|%s|%s|%s|%s" ($t.key | default "") ($t.operator | default "Equal") ($t.value | default "") ($t.effect | default "") $secs) -}}
{{- end -}}
{{- $user := list -}}
{{- range $f := list "runAsUser" "runAsGroup" "fsGroup" -}}
{{- $v := "" -}}
{{- range $layer := list $base ($img.securityContext | default dict) ($r.securityContext | default dict) -}}
{{- if hasKey $layer $f -}}{{- $v = include "teamhub.number" (index $layer $f) -}}{{- end -}}
{{- end -}}
{{- $user = append $user $v -}}
{{- end -}}
{{- $granting := list -}}
{{- range $tkey, $t := $teams -}}{{- if has $p.resource ($t.resources | default list) -}}{{- $granting = append $granting $tkey -}}{{- end -}}{{- end -}}
{{- $gpu := "" -}}
{{- with $p.gpu -}}{{- $gpu = printf "%s=%s" .resource (include "teamhub.number" .count) -}}{{- end -}}
{{- /* GPU visibility as teamhub.catalog.placement.visibility_env, the catalog's env on top */ -}}
{{- $vendor := get (dict "amd.com" "AMD" "nvidia.com" "NVIDIA" "gpu.intel.com" "Intel") (splitList "/" ($p.gpu.resource | default "") | first) -}}
{{- if $p.devices -}}{{- $vendor = include "teamhub.devices.vendor" (list $ (index $p "devices")) -}}{{- end -}}
{{- $env := dict -}}
{{- if or (not $p.devices) $vendor -}}{{- /* DRA with a driver of no known vendor: the driver decides what is visible */ -}}
{{- if ne $vendor "NVIDIA" -}}{{- $_ := set $env "NVIDIA_VISIBLE_DEVICES" "none" -}}{{- end -}}
{{- if ne $vendor "AMD" -}}{{- $_ := set $env "ROCR_VISIBLE_DEVICES" "-1" -}}{{- $_ := set $env "HIP_VISIBLE_DEVICES" "-1" -}}{{- end -}}
{{- if not (or $p.gpu $p.devices) -}}{{- $_ := set $env "CUDA_VISIBLE_DEVICES" "" -}}{{- end -}}
{{- end -}}
{{- $env = merge (deepCopy $p.env) $env -}}
{{- $envLine := list -}}
{{- range $k := keys $env | sortAlpha -}}
{{- $envLine = append $envLine (printf "%s=%s" $k (index $env $k | toString | replace "\\" "\\\\" | replace "\n" "\\n" | replace "," "\\x2c")) -}}
{{- end -}}
{{- $lines := list
      (include "teamhub.image.ref" $img)
      ($img.pullPolicy | default "IfNotPresent")
      ($img.pullSecrets | default list | uniq | sortAlpha | join ",")
      (include "teamhub.number" $cpu.request)
      (ternary (include "teamhub.number" $cpu.limit) "" (hasKey $cpu "limit"))
      (include "teamhub.number" $mem.request)
      (ternary (include "teamhub.number" $mem.limit) "" (hasKey $mem "limit"))
      $gpu
      ($ns | sortAlpha | join ",")
      ($tols | join ",")
      (include "teamhub.number" (mul ($r.maxSessionMinutes | default $sessions.maxMinutes) 60))
      ($user | join ",")
      ($granting | sortAlpha | join ",")
      ($r.priorityClassName | default "")
      ($envLine | join ",")
      (toString ($r.userScheduler | default false)) -}}
{{- $key := $p.resource -}}
{{- if $p.accelerator -}}{{- $key = printf "%s.%s" $p.resource $p.accelerator -}}{{- end -}}
{{- $_ := set $data $key (join "\n" $lines) -}}
{{- end -}}
{{- range $vkey, $v := $cat.volumes -}}
{{- $ro := true -}}
{{- if hasKey $v "readOnly" -}}{{- $ro = $v.readOnly -}}{{- end -}}
{{- $_ := set $data (printf "volume.%s" $vkey) (join "\n" (list $v.pvc $v.mountPath ($v.subPath | default "") (toString $ro))) -}}
{{- end -}}
{{- $storage := .Values.singleuser.storage -}}
{{- if ne $storage.type "none" -}}
{{- /* the hub's KubeSpawner.pvc_name_template and pod_name_template (teamhub.catalog.names) without "{user_server}" */ -}}
{{- $_ := set $data "home" (join "\n" (list "home-" "teamhub-" $storage.homeMountPath)) -}}
{{- end -}}
{{- $_ := set $data "_launch-env" (include "teamhub.admission.launchEnv" . | fromJsonArray | sortAlpha | join ",") -}}
{{- $data = merge $data (include "teamhub.devices.admissionParams" . | fromJson) -}}
{{- toJson $data -}}
{{- end -}}

{{/*
Environment names the hub sets per start (tokens, URLs, the person, the session's end): the policy admits
them by name with a plain value. The twin of teamhub.catalog.admission.LAUNCH_ENV (same names; the params
test holds them equal). Output: a JSON list.
*/}}
{{- define "teamhub.admission.launchEnv" -}}
{{- toJson (list
  "JPY_API_TOKEN" "JUPYTERHUB_ACTIVITY_URL" "JUPYTERHUB_ADMIN_ACCESS" "JUPYTERHUB_API_TOKEN"
  "JUPYTERHUB_API_URL" "JUPYTERHUB_BASE_URL" "JUPYTERHUB_CLIENT_ID" "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED"
  "JUPYTERHUB_COOKIE_OPTIONS" "JUPYTERHUB_DEBUG" "JUPYTERHUB_DEFAULT_URL" "JUPYTERHUB_DISABLE_USER_CONFIG"
  "JUPYTERHUB_HOST" "JUPYTERHUB_OAUTH_ACCESS_SCOPES" "JUPYTERHUB_OAUTH_CALLBACK_URL"
  "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES" "JUPYTERHUB_OAUTH_SCOPES" "JUPYTERHUB_PUBLIC_HUB_URL"
  "JUPYTERHUB_PUBLIC_URL" "JUPYTERHUB_ROOT_DIR" "JUPYTERHUB_SERVER_NAME" "JUPYTERHUB_SERVICE_PREFIX"
  "JUPYTERHUB_SERVICE_URL" "JUPYTERHUB_USER"
  "CPU_GUARANTEE" "CPU_LIMIT" "JUPYTER_IMAGE" "JUPYTER_IMAGE_SPEC" "MEM_GUARANTEE" "MEM_LIMIT"
  "TEAMHUB_ALLOWED_REPOS" "TEAMHUB_RESOURCE" "TEAMHUB_SESSION_END" "TEAMHUB_SESSION_END_EPOCH"
  "TEAMHUB_SESSION_MINUTES") -}}
{{- end -}}

{{- /* "true" when the cluster serves ValidatingAdmissionPolicy v1 (Kubernetes 1.30+), else "". */ -}}
{{- define "teamhub.admission.served" -}}
{{- if and (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy") (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version) -}}true{{- end -}}
{{- end -}}
