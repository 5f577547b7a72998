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
{{- $all := merge (deepCopy (index . 1 | default dict)) (deepCopy ($ctx.Values.commonAnnotations | default dict)) -}}
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

{{/* Per-user origins (hub.subdomainHost; the hub reads it in teamhub/values/origins.py): the hub's host name,
without scheme and port; empty when off. People's servers are <name>.<this host>. */}}
{{- define "teamhub.subdomain.host" -}}
{{- regexReplaceAll ":[0-9]+$" (regexReplaceAll "^[a-z]+://" (.Values.hub.subdomainHost | default "") "") "" -}}
{{- end -}}
{{/* scheme://host[:port] as JupyterHub normalises it (https when no scheme is written); empty when off. */}}
{{- define "teamhub.subdomain.url" -}}
{{- with .Values.hub.subdomainHost -}}{{ if contains "://" . }}{{ . }}{{ else }}https://{{ . }}{{ end }}{{- end -}}
{{- end -}}

{{/* The claim holding the hub's data folder (/srv/teamhub/data): the SQLite volume, the operator's claim or the chart's. */}}
{{- define "teamhub.hub.dataClaim" -}}
{{- $db := .Values.hub.db -}}
{{- if eq $db.type "sqlite-pvc" -}}
{{- include "teamhub.hub.name" . }}-db
{{- else -}}
{{- ($db.backupVolume | default dict).existingClaim | default (printf "%s-data" (include "teamhub.hub.name" .)) -}}
{{- end -}}
{{- end -}}

{{/* A PVC of the hub kept on uninstall: include "teamhub.hub.keptClaim" (dict "ctx" . "name" .. "capacity" .. "storageClass" ..) */}}
{{- define "teamhub.hub.keptClaim" -}}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .name }}
  labels:
    {{- include "teamhub.componentLabels" (list .ctx "hub") | nindent 4 }}
  {{- include "teamhub.annotations" (list .ctx (dict "helm.sh/resource-policy" "keep")) | nindent 2 }}
spec:
  accessModes: [ReadWriteOnce]
  {{- with .storageClass }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ .capacity | quote }}
{{- end -}}

{{/* The Secret holding the proxy token, cookie secret, crypt key and metrics token: generated, or the operator's. */}}
{{- define "teamhub.secrets.name" -}}
{{- .Values.hub.existingSecret | default (printf "%s-secrets" (include "teamhub.fullname" .)) -}}
{{- end -}}

{{/*
The one way an image is referenced: `name`, `name:tag`, `name@digest` or `name:tag@digest` (the tag kept for
people; with a digest the node pulls exactly that). The hub's Python twin is teamhub.catalog.image_ref.
include "teamhub.image.ref" (dict "name" ... "tag" ... "digest" ...)
*/}}
{{- define "teamhub.image.ref" -}}
{{- $ref := .name -}}
{{- if .tag -}}{{- $ref = printf "%s:%s" $ref .tag -}}{{- end -}}
{{- if .digest -}}{{- $ref = printf "%s@%s" $ref .digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{- define "teamhub.hub.image" -}}
{{- $img := .Values.hub.image -}}
{{- include "teamhub.image.ref" (dict "name" $img.name "tag" ($img.tag | default .Chart.AppVersion) "digest" $img.digest) -}}
{{- end -}}

{{- define "teamhub.imagePullSecret.name" -}}{{ include "teamhub.fullname" . }}-image-pull-secret{{- end -}}

{{/*
A pod's imagePullSecrets from one or more lists of Secret names, plus the Secret the chart creates from
imagePullSecret (duplicates dropped, order kept), or nothing when there are none. Every pod of the chart
uses it: include "teamhub.imagePullSecrets" (dict "ctx" . "lists" (list $a $b))
*/}}
{{- define "teamhub.imagePullSecrets" -}}
{{- $names := list -}}
{{- range $list := .lists -}}{{- $names = concat $names ($list | default list) -}}{{- end -}}
{{- if (.ctx.Values.imagePullSecret | default dict).create -}}
{{- $names = append $names (include "teamhub.imagePullSecret.name" .ctx) -}}
{{- end -}}
{{- with $names | uniq }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
Where a pod of the chart runs and how it ranks: nodeSelector, affinity, tolerations and priorityClassName
of one component's values (hub, proxy): include "teamhub.placement" .Values.hub | nindent 6
*/}}
{{- define "teamhub.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
The operator's containers (hub.extraContainers, hub.initContainers) as written, with the chart's
restricted security context filling every field they leave out, so the pod still meets Pod Security
"restricted" unless the operator deliberately says otherwise: include "teamhub.restrictedContainers" $list
*/}}
{{- define "teamhub.restrictedContainers" -}}
{{- $restricted := include "teamhub.containerSecurityContext" . | fromYaml -}}
{{- $out := list -}}
{{- range . -}}
{{- $c := deepCopy . -}}
{{- $_ := set $c "securityContext" (merge (deepCopy ($c.securityContext | default dict)) (deepCopy $restricted)) -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The labels the hub puts on every user pod (env TEAMHUB_USER_POD_LABELS); NetworkPolicies select them. */}}
{{- define "teamhub.userPodLabels" -}}
{{ include "teamhub.selectorLabels" (list . "singleuser-server") }}
{{- end -}}

{{/* Pod and container security contexts meeting the Pod Security Standard "restricted". */}}
{{- define "teamhub.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "teamhub.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

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
{{- $cat := .Values.catalog | default dict -}}
{{- $accs := $cat.accelerators | default dict -}}
{{- $resources := $cat.resources | default dict -}}
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
{{- $out = append $out (dict "resource" $rkey "accelerator" $akey "image" ($o.image | default $r.image) "nodeSelector" $ns "tolerations" $tol "gpu" ($a.gpu | default dict) "env" $env) -}}
{{- end -}}
{{- else -}}
{{- $out = append $out (dict "resource" $rkey "accelerator" "" "image" $r.image "nodeSelector" $rns "tolerations" $rtol "gpu" ($r.gpu | default dict) "env" ($r.env | default dict)) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

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
{{- $images := (.Values.catalog | default dict).images | default dict -}}
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
{{- $extra := .Values.prePuller.extraImages | default dict -}}
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
{{- $op := deepCopy ($pp.affinity | default dict) -}}
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
      "tolerations" (concat (.group.tolerations | default list) ($pp.tolerations | default list) | uniq) -}}
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
          imagePullPolicy: {{ $ctx.Values.prePuller.pause.pullPolicy | default "IfNotPresent" }}
          resources:
            {{- toYaml $ctx.Values.prePuller.resources | nindent 12 }}
          securityContext:
            {{- include "teamhub.containerSecurityContext" . | nindent 12 }}
{{- end -}}

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

{{- /*
The hub container's environment, shared by the hub Deployment and its pre-upgrade check Job, so the check
sees what the hub will see: include "teamhub.hub.env" (dict "ctx" . "generatedSecrets" BOOL
"dbPasswordSecret" NAME). generatedSecrets: the proxy token, cookie secret and crypt key (the check needs none
of them, and before the first install they do not exist). dbPasswordSecret: the Secret whose key `password`
holds hub.db.password.
*/ -}}
{{- define "teamhub.hub.env" -}}
{{- $ctx := .ctx -}}
{{- $db := $ctx.Values.hub.db -}}
{{- $secrets := include "teamhub.secrets.name" $ctx -}}
- name: TEAMHUB_MODE
  value: kubernetes
- name: TEAMHUB_VALUES
  value: /etc/teamhub/values.yaml
- name: TEAMHUB_DATA_DIR
  value: /srv/teamhub/data
- name: TEAMHUB_PROXY_API_URL
  value: http://{{ include "teamhub.proxyApi.name" $ctx }}:8001
- name: TEAMHUB_PROXY_PEERS  # the proxy pods' addresses (headless Service): see auth/clientaddr.py
  value: {{ include "teamhub.proxyPeers.name" $ctx }}
- name: TEAMHUB_HUB_CONNECT_URL
  value: http://{{ include "teamhub.hub.name" $ctx }}:8081
- name: TEAMHUB_USER_POD_LABELS
  value: {{ include "teamhub.userPodLabels" $ctx | fromYaml | toJson | quote }}
- name: TEAMHUB_USER_SCHEDULER  # for catalog resources with userScheduler (templates/user-scheduler/)
  value: {{ include "teamhub.userScheduler.name" $ctx }}
{{- range $method := list "github" "oidc" }}
{{- with (index $ctx.Values.auth $method | default dict).existingSecret }}
- name: TEAMHUB_{{ upper $method }}_CLIENT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ .name }}, key: {{ .key | quote }}}
{{- end }}
{{- end }}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- if $.generatedSecrets }}
- name: CONFIGPROXY_AUTH_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ $secrets }}, key: proxy-token}
- name: JPY_COOKIE_SECRET
  valueFrom:
    secretKeyRef: {name: {{ $secrets }}, key: cookie-secret}
- name: JUPYTERHUB_CRYPT_KEY
  valueFrom:
    secretKeyRef: {name: {{ $secrets }}, key: crypt-key}
{{- if $ctx.Values.metrics.serviceMonitor.enabled }}
- name: TEAMHUB_METRICS_TOKEN  # the token of the hub service with only read:metrics (teamhub/usage/scrape.py)
  valueFrom:
    secretKeyRef: {name: {{ $secrets }}, key: metrics-token}
{{- end }}
{{- end }}
{{- if eq $db.type "postgres" }}
{{- if $db.existingSecret }}
- name: TEAMHUB_DB_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $db.existingSecret.name }}, key: {{ $db.existingSecret.key | quote }}}
{{- else if $db.password }}
- name: TEAMHUB_DB_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $.dbPasswordSecret }}, key: password}
{{- end }}
{{- end }}
{{- range $name := keys $ctx.Values.hub.extraEnv | sortAlpha }}
{{- $value := index $ctx.Values.hub.extraEnv $name }}
- name: {{ $name }}
{{- if kindIs "map" $value }}
  valueFrom:
    {{- toYaml $value.valueFrom | nindent 4 }}
{{- else }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
What the hub reads from its values (at start only), hashed into the hub pod's checksum annotation, so a
change of anything else (proxy, pullers, policies, the chart's own objects) leaves the Recreate hub running:
the sections the schema marks `x-read-by: hub`, hub.db (its hub-read keys and the volume the hub mounts) and
the Ingress hosts, from which teamhub/hub/launchlinks.py builds the public address. Everything else the hub
gets (image, env, volumes, placement) is in its pod template. tests/chart/test_hub_restarts.py fails when
the schema marks something this list lacks.
*/}}
{{- define "teamhub.hub.inputs" -}}
{{- $v := .Values -}}
{{- toYaml (dict
      "sections" (pick $v "auth" "branding" "catalog" "sessions" "launchLinks" "singleuser" "queue")
      "db" $v.hub.db
      "subdomainHost" $v.hub.subdomainHost
      "baseUrl" $v.hub.baseUrl
      "ingress" (pick $v.ingress "enabled" "hosts" "tls")) -}}
{{- end -}}

{{- /* The hub's /etc/teamhub volume (values file, release revision, local users), for the hub and its
pre-upgrade check: include "teamhub.hub.valuesVolume" (dict "ctx" . "secret" VALUES_SECRET_NAME) */ -}}
{{- define "teamhub.hub.valuesVolume" -}}
projected:
  sources:
    - secret:
        name: {{ .secret }}
        items:
          - {key: values.yaml, path: values.yaml}
          # read at start, not an env var: the pod template, and so the hub, would change on every upgrade
          - {key: release-revision, path: release-revision}
    {{- with (.ctx.Values.auth.local).existingSecret }}
    - secret:
        name: {{ .name }}
        items:
          - {key: {{ .key | quote }}, path: local-users.yaml}
    {{- end }}
{{- end -}}

{{- /* A quantity or count as text: YAML numbers reach templates as floats, "2" not "2.0" or "2e+00". */ -}}
{{- define "teamhub.number" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- end -}}

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
{{- $cat := .Values.catalog | default dict -}}
{{- $images := $cat.images | default dict -}}
{{- $resources := $cat.resources | default dict -}}
{{- $teams := $cat.teams | default dict -}}
{{- $sessions := .Values.sessions | default dict -}}
{{- $base := .Values.singleuser.securityContext | default dict -}}
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
{{- $env := dict -}}
{{- if ne $vendor "NVIDIA" -}}{{- $_ := set $env "NVIDIA_VISIBLE_DEVICES" "none" -}}{{- end -}}
{{- if ne $vendor "AMD" -}}{{- $_ := set $env "ROCR_VISIBLE_DEVICES" "-1" -}}{{- $_ := set $env "HIP_VISIBLE_DEVICES" "-1" -}}{{- end -}}
{{- if not $p.gpu -}}{{- $_ := set $env "CUDA_VISIBLE_DEVICES" "" -}}{{- end -}}
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
{{- range $vkey, $v := $cat.volumes | default dict -}}
{{- $ro := true -}}
{{- if hasKey $v "readOnly" -}}{{- $ro = $v.readOnly -}}{{- end -}}
{{- $_ := set $data (printf "volume.%s" $vkey) (join "\n" (list $v.pvc $v.mountPath ($v.subPath | default "") (toString $ro))) -}}
{{- end -}}
{{- $storage := .Values.singleuser.storage | default dict -}}
{{- if ne ($storage.type | default "dynamic") "none" -}}
{{- /* the hub's KubeSpawner.pvc_name_template and pod_name_template (teamhub.hub.config) without "{user_server}" */ -}}
{{- $_ := set $data "home" (join "\n" (list "home-" "teamhub-" ($storage.homeMountPath | default "/home/jovyan"))) -}}
{{- end -}}
{{- $_ := set $data "_launch-env" (include "teamhub.admission.launchEnv" . | fromJsonArray | sortAlpha | join ",") -}}
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
{{- $cat := .Values.catalog | default dict -}}
{{- $accs := $cat.accelerators | default dict -}}
{{- $teams := $cat.teams | default dict -}}
{{- $ns := .Values.singleuser.namespace | default "" -}}
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
{{- $spec := dict "cohortName" (include "teamhub.queue.name" (list $full "")) "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" $ns)) "queueingStrategy" ($.Values.queue.queueingStrategy | default "BestEffortFIFO") "fairSharing" (dict "weight" (include "teamhub.number" (((index $teams $t).queue | default dict).weight | default 1))) "preemption" $never "resourceGroups" $groups -}}
{{- $out = append $out (dict "apiVersion" $api "kind" "ClusterQueue" "metadata" (dict "name" $cq) "spec" $spec) -}}
{{- $locals = append $locals (dict "apiVersion" $api "kind" "LocalQueue" "metadata" (dict "name" (printf "team-%s" $t) "namespace" $ns) "spec" (dict "clusterQueue" $cq)) -}}
{{- end -}}
{{- toJson (concat $out $locals) -}}
{{- end -}}
