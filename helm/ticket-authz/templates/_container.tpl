{{/*
Our container and the pod volumes it needs, written once and used twice: by
this chart's Deployment (mode deployment) and by an application's chart that
adds us to its own pods (mode sidecar), through the two public templates at
the end of this file. The internal ones take a dict: "root" is the chart's
context and "sidecar" whether the pod is someone else's.
*/}}

{{/* Port names: a sidecar's are prefixed so they cannot clash with the application's. */}}
{{- define "ticket-authz.portName" -}}
{{- if .sidecar }}authz-{{ end }}{{ .port }}
{{- end }}

{{- define "ticket-authz.grpcHost" -}}
{{- if .root.Values.grpc.host }}
{{- .root.Values.grpc.host }}
{{- else if .sidecar }}127.0.0.1
{{- else }}0.0.0.0
{{- end }}
{{- end }}

{{- define "ticket-authz.decisionLogIsFile" -}}
{{- if and .Values.decisionLog.enabled (ne .Values.decisionLog.output "stdout") }}true{{ end }}
{{- end }}

{{/*
NATS, for the serving pods with source nats and for the relay alike: the
server, the stream, subject and bucket, and the paths of the credential and
CA files that natsVolumeMounts puts in place. Takes the chart's context.
*/}}
{{- define "ticket-authz.natsEnv" -}}
{{- $n := .Values.nats -}}
- name: TICKET_AUTHZ_NATS_URL
  value: {{ $n.url | quote }}
{{- if $n.credentials.existingSecret }}
{{- if $n.credentials.credsKey }}
- name: TICKET_AUTHZ_NATS_CREDS
  value: /etc/ticket-authz/nats/nats.creds
{{- else }}
- name: TICKET_AUTHZ_NATS_TOKEN_FILE
  value: /etc/ticket-authz/nats/token
{{- end }}
{{- end }}
{{- if $n.tls.caSecret }}
- name: TICKET_AUTHZ_NATS_TLS_CA
  value: /etc/ticket-authz/nats-ca/ca.crt
{{- end }}
- name: TICKET_AUTHZ_STREAM
  value: {{ $n.stream | quote }}
- name: TICKET_AUTHZ_SUBJECT
  value: {{ $n.subject | quote }}
- name: TICKET_AUTHZ_BUCKET
  value: {{ $n.bucket | quote }}
{{- end }}

{{/* Whole Secret volumes (never subPath), so that a rotated Secret reaches the files. */}}
{{- define "ticket-authz.natsVolumeMounts" -}}
{{- if .Values.nats.credentials.existingSecret }}
- name: ticket-authz-nats-credentials
  mountPath: /etc/ticket-authz/nats
  readOnly: true
{{- end }}
{{- if .Values.nats.tls.caSecret }}
- name: ticket-authz-nats-ca
  mountPath: /etc/ticket-authz/nats-ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "ticket-authz.natsVolumes" -}}
{{- $n := .Values.nats -}}
{{- if $n.credentials.existingSecret }}
- name: ticket-authz-nats-credentials
  secret:
    secretName: {{ $n.credentials.existingSecret | quote }}
    defaultMode: {{ int .Values.secretFileMode }}
    items:
      {{- if $n.credentials.credsKey }}
      - key: {{ $n.credentials.credsKey | quote }}
        path: nats.creds
      {{- else }}
      - key: {{ $n.credentials.tokenKey | quote }}
        path: token
      {{- end }}
{{- end }}
{{- if $n.tls.caSecret }}
- name: ticket-authz-nats-ca
  secret:
    secretName: {{ $n.tls.caSecret | quote }}
    defaultMode: {{ int .Values.secretFileMode }}
    items:
      - key: {{ $n.tls.caKey | quote }}
        path: ca.crt
{{- end }}
{{- end }}

{{/* Every setting as an environment variable: the service reads nothing else. */}}
{{- define "ticket-authz.env" -}}
{{- $v := .root.Values -}}
- name: TICKET_AUTHZ_LISTEN
  value: {{ printf "%s:%d" (include "ticket-authz.grpcHost" .) (int $v.grpc.port) | quote }}
- name: TICKET_AUTHZ_HEALTH_LISTEN
  value: {{ printf "%s:%d" $v.health.host (int $v.health.port) | quote }}
{{- if $v.metrics.enabled }}
- name: TICKET_AUTHZ_METRICS_LISTEN
  value: {{ printf "%s:%d" $v.metrics.host (int $v.metrics.port) | quote }}
{{- end }}
{{- if eq $v.source "nats" }}
{{- /* No database URL at all: the data comes from the relay, through NATS. */}}
{{ include "ticket-authz.natsEnv" .root }}
{{- else }}
{{- if eq $v.database.type "postgres" }}
- name: TICKET_AUTHZ_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.database.postgres.existingSecret | quote }}
      key: {{ $v.database.postgres.key | quote }}
{{- else }}
{{- /* Not a secret: a file path on our own volume. */}}
- name: TICKET_AUTHZ_DATABASE_URL
  value: {{ printf "sqlite://%s" $v.database.sqlite.path | quote }}
{{- end }}
{{- if not (kindIs "invalid" $v.server.databaseMaxConnections) }}
- name: TICKET_AUTHZ_DATABASE_MAX_CONNECTIONS
  value: {{ int $v.server.databaseMaxConnections | quote }}
{{- end }}
- name: TICKET_AUTHZ_NOTIFY
  value: {{ $v.server.notify | quote }}
- name: TICKET_AUTHZ_POLL_INTERVAL
  value: {{ $v.server.pollInterval | quote }}
{{- end }}
- name: TICKET_AUTHZ_REVISION_WAIT
  value: {{ $v.server.revisionWait | quote }}
{{- if $v.server.ticketCache }}
- name: TICKET_AUTHZ_TICKET_CACHE
  value: {{ $v.server.ticketCache | quote }}
{{- end }}
{{- if $v.server.snapshotDir }}
- name: TICKET_AUTHZ_SNAPSHOT_DIR
  value: {{ clean $v.server.snapshotDir | quote }}
- name: TICKET_AUTHZ_SNAPSHOT_INTERVAL
  value: {{ $v.server.snapshotInterval | quote }}
{{- end }}
- name: TICKET_AUTHZ_MAX_CONCURRENT_REQUESTS
  value: {{ int $v.server.maxConcurrentRequests | quote }}
- name: TICKET_AUTHZ_MAX_MESSAGE_BYTES
  value: {{ int64 $v.server.maxMessageBytes | quote }}
- name: TICKET_AUTHZ_SHUTDOWN_GRACE
  value: {{ printf "%ds" (int $v.server.shutdownGraceSeconds) | quote }}
{{- if $v.tls.existingSecret }}
- name: TICKET_AUTHZ_TLS_CERT
  value: /etc/ticket-authz/tls/tls.crt
- name: TICKET_AUTHZ_TLS_KEY
  value: /etc/ticket-authz/tls/tls.key
{{- end }}
{{- if $v.tls.clientCA.existingSecret }}
- name: TICKET_AUTHZ_CLIENT_CA
  value: /etc/ticket-authz/client-ca/ca.crt
{{- end }}
{{- if $v.authToken.existingSecret }}
- name: TICKET_AUTHZ_AUTH_TOKEN_FILE
  value: /etc/ticket-authz/token/token
{{- end }}
- name: TICKET_AUTHZ_LOG_FORMAT
  value: {{ $v.log.format | quote }}
- name: TICKET_AUTHZ_LOG_FILTER
  value: {{ $v.log.filter | quote }}
{{- if $v.decisionLog.enabled }}
- name: TICKET_AUTHZ_DECISION_LOG
  value: {{ $v.decisionLog.output | quote }}
- name: TICKET_AUTHZ_DECISION_LOG_SAMPLE
  value: {{ $v.decisionLog.sampleRatio | toString | quote }}
{{- end }}
- name: TICKET_AUTHZ_TRACE_SUBJECTS
  value: {{ $v.tracing.traceSubjects | toString | quote }}
- name: TICKET_AUTHZ_EXT_AUTHZ_USER_HEADER
  value: {{ $v.extAuthz.userHeader | quote }}
{{- if $v.extAuthz.jwtClaim }}
- name: TICKET_AUTHZ_EXT_AUTHZ_JWT_CLAIM
  value: {{ $v.extAuthz.jwtClaim | quote }}
{{- end }}
- name: TICKET_AUTHZ_EXT_AUTHZ_UNMATCHED
  value: {{ $v.extAuthz.unmatched | quote }}
{{- if $v.extAuthz.routes }}
- name: TICKET_AUTHZ_EXT_AUTHZ_ROUTES
  value: /etc/ticket-authz/ext-authz/routes.yaml
{{- end }}
{{- if $v.tracing.endpoint }}
{{- /* The pod's identity joins the trace resource, so spans say which replica answered. */}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $v.tracing.endpoint | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ $v.tracing.serviceName | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE)"
{{- if $v.tracing.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $v.tracing.sampler | quote }}
{{- end }}
{{- if $v.tracing.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $v.tracing.samplerArg | toString | quote }}
{{- end }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ticket-authz.volumeMounts" -}}
{{- $v := .root.Values -}}
- name: ticket-authz-tmp
  mountPath: /tmp
{{- if include "ticket-authz.usesSqlite" .root }}
- name: ticket-authz-data
  mountPath: {{ dir $v.database.sqlite.path | quote }}
{{- end }}
{{- if $v.server.snapshotDir }}
- name: ticket-authz-snapshot
  mountPath: {{ clean $v.server.snapshotDir | quote }}
{{- end }}
{{- if eq $v.source "nats" }}
{{- include "ticket-authz.natsVolumeMounts" .root }}
{{- end }}
{{- if $v.tls.existingSecret }}
- name: ticket-authz-tls
  mountPath: /etc/ticket-authz/tls
  readOnly: true
{{- end }}
{{- if $v.tls.clientCA.existingSecret }}
- name: ticket-authz-client-ca
  mountPath: /etc/ticket-authz/client-ca
  readOnly: true
{{- end }}
{{- if $v.authToken.existingSecret }}
- name: ticket-authz-token
  mountPath: /etc/ticket-authz/token
  readOnly: true
{{- end }}
{{- if include "ticket-authz.decisionLogIsFile" .root }}
- name: ticket-authz-decision-log
  mountPath: {{ dir $v.decisionLog.output | quote }}
{{- end }}
{{- if $v.extAuthz.routes }}
- name: ticket-authz-ext-authz-routes
  mountPath: /etc/ticket-authz/ext-authz
  readOnly: true
{{- end }}
{{- with $v.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The pod volumes behind the mounts above; every name starts with ticket-authz-. */}}
{{- define "ticket-authz.volumes" -}}
{{- $v := .Values -}}
- name: ticket-authz-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if $v.server.snapshotDir }}
- name: ticket-authz-snapshot
  emptyDir: {}
{{- end }}
{{- if eq $v.source "nats" }}
{{- include "ticket-authz.natsVolumes" . }}
{{- end }}
{{- if include "ticket-authz.usesSqlite" . }}
- name: ticket-authz-data
{{- if eq $v.database.sqlite.storage "persistentVolumeClaim" }}
  persistentVolumeClaim:
    claimName: {{ include "ticket-authz.sqliteClaimName" . | quote }}
{{- else if $v.database.sqlite.emptyDir.sizeLimit }}
  emptyDir:
    sizeLimit: {{ $v.database.sqlite.emptyDir.sizeLimit | quote }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end }}
{{- if $v.tls.existingSecret }}
- name: ticket-authz-tls
  secret:
    secretName: {{ $v.tls.existingSecret | quote }}
    defaultMode: {{ int $v.secretFileMode }}
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- if $v.tls.clientCA.existingSecret }}
- name: ticket-authz-client-ca
  secret:
    secretName: {{ $v.tls.clientCA.existingSecret | quote }}
    defaultMode: {{ int $v.secretFileMode }}
    items:
      - key: {{ $v.tls.clientCA.key | quote }}
        path: ca.crt
{{- end }}
{{- if $v.authToken.existingSecret }}
- name: ticket-authz-token
  secret:
    secretName: {{ $v.authToken.existingSecret | quote }}
    defaultMode: {{ int $v.secretFileMode }}
    items:
      - key: {{ $v.authToken.key | quote }}
        path: token
{{- end }}
{{- if include "ticket-authz.decisionLogIsFile" . }}
- name: ticket-authz-decision-log
  emptyDir: {}
{{- end }}
{{- if $v.extAuthz.routes }}
- name: ticket-authz-ext-authz-routes
  configMap:
    name: {{ printf "%s-ext-authz-routes" (include "ticket-authz.fullname" .) | quote }}
    items:
      - key: routes.yaml
        path: routes.yaml
{{- end }}
{{- end }}

{{/* The container's securityContext, the same for the serving container and the relay. */}}
{{- define "ticket-authz.containerSecurityContext" -}}
runAsNonRoot: true
{{- if not (kindIs "invalid" .Values.securityContext.runAsUser) }}
runAsUser: {{ int64 .Values.securityContext.runAsUser }}
{{- end }}
{{- if not (kindIs "invalid" .Values.securityContext.runAsGroup) }}
runAsGroup: {{ int64 .Values.securityContext.runAsGroup }}
{{- end }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The pod's securityContext, for this chart's own pods (the Deployment's and the relay's). */}}
{{- define "ticket-authz.podSecurityContext" -}}
runAsNonRoot: true
{{- if not (kindIs "invalid" .Values.securityContext.runAsUser) }}
runAsUser: {{ int64 .Values.securityContext.runAsUser }}
{{- end }}
{{- if not (kindIs "invalid" .Values.securityContext.runAsGroup) }}
runAsGroup: {{ int64 .Values.securityContext.runAsGroup }}
{{- end }}
{{- if not (kindIs "invalid" .Values.securityContext.fsGroup) }}
fsGroup: {{ int64 .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The container. Probes call grpc.health.v1 on the plaintext health port, so
they work whatever TLS, client certificates or tokens the main port demands.
The startup probe holds the others back until the first snapshot is loaded.
*/}}
{{- define "ticket-authz.container" -}}
{{- $v := .root.Values -}}
- name: {{ if .sidecar }}{{ $v.sidecar.containerName }}{{ else }}{{ .root.Chart.Name }}{{ end }}
  image: {{ include "ticket-authz.image" .root | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if and .sidecar $v.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  args:
    - serve
  ports:
    - name: {{ include "ticket-authz.portName" (dict "sidecar" .sidecar "port" "grpc") }}
      containerPort: {{ int $v.grpc.port }}
      protocol: TCP
    - name: {{ include "ticket-authz.portName" (dict "sidecar" .sidecar "port" "health") }}
      containerPort: {{ int $v.health.port }}
      protocol: TCP
    {{- if $v.metrics.enabled }}
    - name: {{ include "ticket-authz.portName" (dict "sidecar" .sidecar "port" "metrics") }}
      containerPort: {{ int $v.metrics.port }}
      protocol: TCP
    {{- end }}
  env:
    {{- include "ticket-authz.env" . | nindent 4 }}
  startupProbe:
    grpc:
      port: {{ int $v.health.port }}
      service: ticketauthz.v1.TicketAuthz
    periodSeconds: {{ int $v.probes.startup.periodSeconds }}
    failureThreshold: {{ int $v.probes.startup.failureThreshold }}
    timeoutSeconds: {{ int $v.probes.startup.timeoutSeconds }}
  livenessProbe:
    grpc:
      port: {{ int $v.health.port }}
      service: ""
    periodSeconds: {{ int $v.probes.liveness.periodSeconds }}
    failureThreshold: {{ int $v.probes.liveness.failureThreshold }}
    timeoutSeconds: {{ int $v.probes.liveness.timeoutSeconds }}
  readinessProbe:
    grpc:
      port: {{ int $v.health.port }}
      service: ticketauthz.v1.TicketAuthz
    periodSeconds: {{ int $v.probes.readiness.periodSeconds }}
    failureThreshold: {{ int $v.probes.readiness.failureThreshold }}
    timeoutSeconds: {{ int $v.probes.readiness.timeoutSeconds }}
  {{- if gt (int $v.preStopSleepSeconds) 0 }}
  lifecycle:
    preStop:
      sleep:
        seconds: {{ int $v.preStopSleepSeconds }}
  {{- end }}
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "ticket-authz.containerSecurityContext" .root | nindent 4 }}
  volumeMounts:
    {{- include "ticket-authz.volumeMounts" . | nindent 4 }}
{{- end }}

{{/*
Public: our container as one list item, for an application's chart to put
under its pod's initContainers (sidecar.native: true, the default) or
containers (sidecar.native: false). Call it with the subchart's context:
  {{- include "ticket-authz.sidecar.container" (index .Subcharts "ticket-authz") | nindent 8 }}
*/}}
{{- define "ticket-authz.sidecar.container" -}}
{{- if ne .Values.mode "sidecar" }}
{{- fail "ticket-authz: the application's values must set ticket-authz.mode=sidecar when including ticket-authz.sidecar.container, or the chart also renders a Deployment of its own" }}
{{- end }}
{{- include "ticket-authz.validate" . }}
{{- include "ticket-authz.container" (dict "root" . "sidecar" true) }}
{{- end }}

{{/* Public: the pod volumes the sidecar mounts, as list items for the pod's volumes. */}}
{{- define "ticket-authz.sidecar.volumes" -}}
{{- include "ticket-authz.volumes" . }}
{{- end }}
