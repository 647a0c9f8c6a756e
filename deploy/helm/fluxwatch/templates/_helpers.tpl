{{/* Chart name, truncated for label values. */}}
{{- define "fluxwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. Truncated to 40 characters so "<fullname>-exporter-<n>", the
StatefulSet pods' host names from which each exporter takes its shard, stays a valid DNS label.
*/}}
{{- define "fluxwatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "fluxwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fluxwatch.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of every object; pass (dict "root" $ "component" "exporter"). */}}
{{- define "fluxwatch.labels" -}}
{{ include "fluxwatch.selectorLabels" . }}
app.kubernetes.io/part-of: fluxwatch
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "fluxwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fluxwatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "fluxwatch.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The namespace the exporter watches ("" for all). */}}
{{- define "fluxwatch.watchNamespace" -}}
{{- if .Values.exporter.watchNamespace }}
{{- .Values.exporter.watchNamespace }}
{{- else if eq .Values.rbac.scope "namespace" }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{- define "fluxwatch.bridgeURL" -}}
{{- printf "http://%s-bridge.%s.svc:%d" (include "fluxwatch.fullname" .) .Release.Namespace (int .Values.bridge.service.port) }}
{{- end }}

{{/* Both parts: non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp. */}}
{{- define "fluxwatch.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "fluxwatch.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The exporter: section of fluxwatch.yaml; the chart's keys win over exporter.config. */}}
{{- define "fluxwatch.exporterConfig" -}}
{{- $derived := dict "listen" "0.0.0.0:9797" "per_object" .Values.exporter.perObject "total_shards" (int .Values.exporter.replicas) }}
{{- if eq .Values.exporter.mode "hub" }}
{{- $_ := set $derived "kubeconfig_dir" "/etc/fluxwatch/clusters" }}
{{- else }}
{{- $_ := set $derived "in_cluster" true }}
{{- $_ := set $derived "in_cluster_name" .Values.exporter.clusterName }}
{{- end }}
{{- with include "fluxwatch.watchNamespace" . }}
{{- $_ := set $derived "namespace" . }}
{{- end }}
{{- with .Values.exporter.labelSelector }}
{{- $_ := set $derived "label_selector" . }}
{{- end }}
{{- toYaml (mustMergeOverwrite (deepCopy .Values.exporter.config) $derived) }}
{{- end }}

{{/* The bridge: section of fluxwatch.yaml; secrets only as paths of mounted Secrets. */}}
{{- define "fluxwatch.bridgeConfig" -}}
{{- $derived := dict "listen" (printf "0.0.0.0:%d" (int .Values.bridge.service.port)) "state_dir" "/var/lib/fluxwatch" }}
{{- with .Values.bridge.flux.hmacKeys.existingSecret }}
{{- $_ := set $derived "flux" (dict "hmac_keys_file" (printf "/etc/fluxwatch/secrets/flux-hmac/%s" $.Values.bridge.flux.hmacKeys.key)) }}
{{- end }}
{{- with .Values.bridge.alertmanager.bearerToken.existingSecret }}
{{- $_ := set $derived "alertmanager" (dict "bearer_token_file" (printf "/etc/fluxwatch/secrets/alertmanager/%s" $.Values.bridge.alertmanager.bearerToken.key)) }}
{{- end }}
{{- with .Values.bridge.postgres }}
{{- if .enabled }}
{{- $pg := dict "dsn_file" (printf "/etc/fluxwatch/secrets/postgres/%s" .dsn.key) }}
{{- with .sslmode }}
{{- $_ := set $pg "sslmode" . }}
{{- end }}
{{- if .rootCA.existingSecret }}
{{- $_ := set $pg "sslrootcert" (printf "/etc/fluxwatch/secrets/postgres-ca/%s" .rootCA.key) }}
{{- end }}
{{- if .clientCert.existingSecret }}
{{- $_ := set $pg "sslcert" (printf "/etc/fluxwatch/secrets/postgres-client/%s" .clientCert.certKey) }}
{{- $_ := set $pg "sslkey" (printf "/etc/fluxwatch/secrets/postgres-client/%s" .clientCert.keyKey) }}
{{- end }}
{{- with .lease }}
{{- $_ := set $pg "lease" . }}
{{- end }}
{{- $_ := set $derived "outbox" (dict "postgres" $pg) }}
{{- end }}
{{- end }}
{{- if .Values.transitions.enabled }}
{{- $_ := set $derived "exporters" (dict "token_file" (printf "/etc/fluxwatch/secrets/bridge-token/%s" .Values.transitions.token.key)) }}
{{- end }}
{{- toYaml (mustMergeOverwrite (deepCopy .Values.bridge.config) $derived) }}
{{- end }}

{{- define "fluxwatch.checkValues" -}}
{{- if and (eq .Values.exporter.mode "hub") .Values.exporter.enabled (not .Values.exporter.hub.kubeconfigSecrets) }}
{{- fail "exporter.mode=hub needs exporter.hub.kubeconfigSecrets: the Secrets holding one kubeconfig per cluster" }}
{{- end }}
{{- if and .Values.transitions.enabled (not .Values.transitions.token.existingSecret) }}
{{- fail "transitions.enabled needs transitions.token.existingSecret: the Secret holding the bridge token" }}
{{- end }}
{{- if and .Values.bridge.postgres.enabled (not .Values.bridge.postgres.dsn.existingSecret) }}
{{- fail "bridge.postgres.enabled needs bridge.postgres.dsn.existingSecret: the Secret holding the connection string" }}
{{- end }}
{{- if and .Values.bridge.enabled (gt (int .Values.bridge.replicas) 1) (not .Values.bridge.postgres.enabled) }}
{{- fail "bridge.replicas > 1 needs bridge.postgres.enabled: the SQLite outbox on a volume has one writer; several replicas share their outbox in PostgreSQL (docs/bridge.md#several-replicas-on-postgresql)" }}
{{- end }}
{{- if and .Values.transitions.enabled (not .Values.bridge.enabled) }}
{{- fail "transitions.enabled needs bridge.enabled: the exporter sends its transitions to this release's bridge" }}
{{- end }}
{{- end }}

{{/*
Where the bridge's replicas run: the user's constraints, or with several replicas a spread over
zones (best effort: not every cluster has zones) and over nodes (required), so that losing one
node or zone leaves a replica delivering.
*/}}
{{- define "fluxwatch.bridgeTopologySpread" -}}
{{- if .Values.bridge.topologySpreadConstraints }}
{{- toYaml .Values.bridge.topologySpreadConstraints }}
{{- else if gt (int .Values.bridge.replicas) 1 }}
{{- range $key, $when := dict "topology.kubernetes.io/zone" "ScheduleAnyway" "kubernetes.io/hostname" "DoNotSchedule" }}
- maxSkew: 1
  topologyKey: {{ $key }}
  whenUnsatisfiable: {{ $when }}
  labelSelector:
    matchLabels:
      {{- include "fluxwatch.selectorLabels" (dict "root" $ "component" "bridge") | nindent 6 }}
{{- end }}
{{- end }}
{{- end }}
