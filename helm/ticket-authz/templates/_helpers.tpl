{{/*
Names, labels and the checks on combinations of values that the schema
cannot express, shared by every template of the chart. Each helper takes the
chart's own context (the root `.`, or `.Subcharts.ticket-authz` when an
application's chart calls in).
*/}}

{{- define "ticket-authz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, cut to 63 characters (the limit of a label value
and of many object names). A release already named after the chart is not
repeated.
*/}}
{{- define "ticket-authz.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ticket-authz.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select our pods; they never change between upgrades. */}}
{{- define "ticket-authz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ticket-authz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ticket-authz.labels" -}}
helm.sh/chart: {{ include "ticket-authz.chart" . }}
{{ include "ticket-authz.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: authorization
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The relay's pods are told apart from the serving pods by their name label
(the serving pods' selector, name and instance, can never change on an
upgrade, so a component label alone would leave the relay's pods inside
it): no Service, budget or policy of the serving pods selects a relay.
*/}}
{{- define "ticket-authz.relayName" -}}
{{- printf "%s-relay" (include "ticket-authz.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ticket-authz.relayFullname" -}}
{{- printf "%s-relay" (include "ticket-authz.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "ticket-authz.relaySelectorLabels" -}}
app.kubernetes.io/name: {{ include "ticket-authz.relayName" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: relay
{{- end }}

{{- define "ticket-authz.relayLabels" -}}
helm.sh/chart: {{ include "ticket-authz.chart" . }}
{{ include "ticket-authz.relaySelectorLabels" . }}
app.kubernetes.io/part-of: {{ include "ticket-authz.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* "true" when the serving pods follow an SQLite file of their own. */}}
{{- define "ticket-authz.usesSqlite" -}}
{{- if and (eq .Values.source "database") (eq .Values.database.type "sqlite") }}true{{ end }}
{{- end }}

{{/* "true" when some pod of ours talks to NATS: serving pods reading it, or the relay. */}}
{{- define "ticket-authz.usesNats" -}}
{{- if or (eq .Values.source "nats") .Values.relay.enabled }}true{{ end }}
{{- end }}

{{- define "ticket-authz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ticket-authz.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ticket-authz.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The claim holding the SQLite file, when the database lives on one. */}}
{{- define "ticket-authz.sqliteClaimName" -}}
{{- default (printf "%s-data" (include "ticket-authz.fullname" .)) .Values.database.sqlite.persistentVolumeClaim.existingClaim }}
{{- end }}

{{/*
PromQL label matchers that pick this release's series out of everything
Prometheus scrapes: metrics.prometheusRule.selector when set, else the job
and namespace a ServiceMonitor of this chart gives them (the Prometheus
Operator names the job after the Service).
*/}}
{{- define "ticket-authz.ruleSelector" -}}
{{- with .Values.metrics.prometheusRule.selector }}
{{- . }}
{{- else }}
{{- printf "job=%q,namespace=%q" (include "ticket-authz.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
A NetworkPolicy's egress rules: DNS, NATS when the pods talk to it
(networkPolicy.egress.natsTo on natsPorts), then networkPolicy.egress.to.
Takes a dict: "root" is the chart's context, "nats" whether to open NATS.
*/}}
{{- define "ticket-authz.egressRules" -}}
{{- $egress := .root.Values.networkPolicy.egress -}}
# Name resolution, wherever the cluster's DNS runs.
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- if .nats }}
# The NATS server the relay publishes to and source nats reads from.
- ports:
    {{- range $egress.natsPorts }}
    - port: {{ int . }}
      protocol: TCP
    {{- end }}
  {{- with $egress.natsTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- with $egress.to }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Combinations the schema cannot rule out. Rendering stops with a message
naming the values to change, rather than producing a release that would
fail at run time (two writers on one SQLite file, a probe-less drain cut
short by the kubelet, and so on).
*/}}
{{- define "ticket-authz.validate" -}}
{{- $v := .Values -}}
{{- if include "ticket-authz.usesSqlite" . }}
{{- if and (eq $v.mode "deployment") (gt (int $v.replicaCount) 1) }}
{{- fail (printf "ticket-authz: SQLite allows only one replica (replicaCount is %d): set database.type=postgres with database.postgres.existingSecret, or replicaCount=1" (int $v.replicaCount)) }}
{{- end }}
{{- if and (eq $v.mode "deployment") $v.autoscaling.enabled }}
{{- fail "ticket-authz: SQLite allows only one replica, so autoscaling.enabled needs database.type=postgres" }}
{{- end }}
{{- end }}
{{- if and (eq $v.database.type "postgres") (not $v.database.postgres.existingSecret) }}
{{- fail "ticket-authz: database.type=postgres needs database.postgres.existingSecret, the Secret holding the postgres:// URL (the URL is never a plain value)" }}
{{- end }}
{{- if eq $v.source "nats" }}
{{- if $v.server.ticketCache }}
{{- fail "ticket-authz: server.ticketCache reads tickets from the database, so it needs source=database; with source=nats every ticket is held in memory (set server.ticketCache=\"\")" }}
{{- end }}
{{- if not (kindIs "invalid" $v.server.databaseMaxConnections) }}
{{- fail "ticket-authz: server.databaseMaxConnections needs source=database; with source=nats the serving pods open no database connection (the relay's are relay.databaseMaxConnections)" }}
{{- end }}
{{- end }}
{{- if include "ticket-authz.usesNats" . }}
{{- if not $v.nats.url }}
{{- fail "ticket-authz: source=nats and relay.enabled need nats.url, the NATS server to connect to, e.g. nats://nats.nats.svc:4222" }}
{{- end }}
{{- if $v.nats.credentials.existingSecret }}
{{- if eq (empty $v.nats.credentials.credsKey) (empty $v.nats.credentials.tokenKey) }}
{{- fail "ticket-authz: nats.credentials.existingSecret needs exactly one of nats.credentials.credsKey (a .creds file) and nats.credentials.tokenKey (a token); set the other to \"\"" }}
{{- end }}
{{- end }}
{{- end }}
{{- if $v.relay.enabled }}
{{- if ne $v.database.type "postgres" }}
{{- fail "ticket-authz: relay.enabled needs database.type=postgres with database.postgres.existingSecret: the relay follows PostgreSQL's change log, and an SQLite file cannot be shared with it" }}
{{- end }}
{{- if le (int $v.relay.terminationGracePeriodSeconds) (int $v.relay.shutdownGraceSeconds) }}
{{- fail (printf "ticket-authz: relay.terminationGracePeriodSeconds (%d) must exceed relay.shutdownGraceSeconds (%d), or the kubelet kills a relay still handing over its lease" (int $v.relay.terminationGracePeriodSeconds) (int $v.relay.shutdownGraceSeconds)) }}
{{- end }}
{{- if and $v.relay.podDisruptionBudget.enabled (kindIs "invalid" $v.relay.podDisruptionBudget.minAvailable) (kindIs "invalid" $v.relay.podDisruptionBudget.maxUnavailable) }}
{{- fail "ticket-authz: relay.podDisruptionBudget.enabled needs minAvailable or maxUnavailable" }}
{{- end }}
{{- end }}
{{- if and $v.tls.clientCA.existingSecret (not $v.tls.existingSecret) }}
{{- fail "ticket-authz: tls.clientCA.existingSecret (mutual TLS) needs tls.existingSecret too" }}
{{- end }}
{{- if and $v.metrics.serviceMonitor.enabled (not $v.metrics.enabled) }}
{{- fail "ticket-authz: metrics.serviceMonitor.enabled needs metrics.enabled" }}
{{- end }}
{{- if and $v.metrics.serviceMonitor.enabled (eq $v.mode "sidecar") (not $v.relay.enabled) }}
{{- fail "ticket-authz: metrics.serviceMonitor needs mode deployment (or relay.enabled, whose relay it then scrapes alone); scrape a sidecar through its application's Service or a PodMonitor" }}
{{- end }}
{{- if and (or $v.metrics.prometheusRule.enabled $v.metrics.grafanaDashboard.enabled) (not $v.metrics.enabled) }}
{{- fail "ticket-authz: metrics.prometheusRule.enabled and metrics.grafanaDashboard.enabled need metrics.enabled" }}
{{- end }}
{{- if and $v.metrics.prometheusRule.enabled (eq $v.mode "sidecar") (not $v.metrics.prometheusRule.selector) }}
{{- fail "ticket-authz: metrics.prometheusRule in mode sidecar needs metrics.prometheusRule.selector, e.g. job=\"<the application's Service>\",namespace=\"<its namespace>\" (the sidecar is scraped as part of the application)" }}
{{- end }}
{{- if and (eq $v.mode "deployment") $v.autoscaling.enabled }}
{{- if gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas) }}
{{- fail "ticket-authz: autoscaling.minReplicas is greater than autoscaling.maxReplicas" }}
{{- end }}
{{- if not (dig "requests" "cpu" "" ($v.resources | default dict)) }}
{{- fail "ticket-authz: autoscaling on CPU utilisation needs resources.requests.cpu" }}
{{- end }}
{{- end }}
{{- if and $v.podDisruptionBudget.enabled (kindIs "invalid" $v.podDisruptionBudget.minAvailable) (kindIs "invalid" $v.podDisruptionBudget.maxUnavailable) }}
{{- fail "ticket-authz: podDisruptionBudget.enabled needs minAvailable or maxUnavailable" }}
{{- end }}
{{- $needed := add (int $v.preStopSleepSeconds) (int $v.server.shutdownGraceSeconds) }}
{{- if and (eq $v.mode "deployment") (le (int $v.terminationGracePeriodSeconds) $needed) }}
{{- fail (printf "ticket-authz: terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + server.shutdownGraceSeconds (%d), or the kubelet kills calls still draining" (int $v.terminationGracePeriodSeconds) $needed) }}
{{- end }}
{{- $sqliteDir := "" }}
{{- if include "ticket-authz.usesSqlite" . }}{{ $sqliteDir = dir $v.database.sqlite.path }}{{ end }}
{{- $logDir := "" }}
{{- if and $v.decisionLog.enabled (ne $v.decisionLog.output "stdout") }}
{{- $logDir = dir $v.decisionLog.output }}
{{- if or (eq $logDir "/tmp") (hasPrefix "/etc/ticket-authz" $logDir) (eq $logDir $sqliteDir) }}
{{- fail (printf "ticket-authz: decisionLog.output must be in a directory of its own (it gets its own volume), not %s" $logDir) }}
{{- end }}
{{- end }}
{{- with $v.server.snapshotDir }}
{{- $snap := clean . }}
{{- if or (eq $snap "/") (eq $snap "/tmp") (hasPrefix "/etc/ticket-authz" $snap) (eq $snap $sqliteDir) (eq $snap $logDir) }}
{{- fail (printf "ticket-authz: server.snapshotDir must be a directory of its own (it gets its own volume), not %s" $snap) }}
{{- end }}
{{- end }}
{{- $ports := list (int $v.grpc.port) (int $v.health.port) }}
{{- if $v.metrics.enabled }}{{ $ports = append $ports (int $v.metrics.port) }}{{ end }}
{{- if ne (len $ports) (len (uniq $ports)) }}
{{- fail "ticket-authz: grpc.port, health.port and metrics.port must differ" }}
{{- end }}
{{- end }}
