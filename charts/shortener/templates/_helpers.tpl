{{/* Name of this slot's objects: <app>-<slot>. */}}
{{- define "shortener.fullname" -}}
{{- printf "%s-%s" .Values.app .Values.slot -}}
{{- end -}}

{{/* Selector labels: the app and the slot. liftoff's Services select on these. */}}
{{- define "shortener.selectorLabels" -}}
app.kubernetes.io/name: {{ .Values.app }}
liftoff.dev/slot: {{ .Values.slot }}
{{- end -}}

{{- define "shortener.labels" -}}
{{ include "shortener.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "shortener.version" . | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: {{ .Values.app }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The image reference: repository@digest, or repository:tag. */}}
{{- define "shortener.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* A label-safe version: the digest's first 12 hex digits, or the tag. */}}
{{- define "shortener.version" -}}
{{- if .Values.image.digest -}}
{{ trimPrefix "sha256:" .Values.image.digest | trunc 12 }}
{{- else -}}
{{ .Values.image.tag | trunc 63 }}
{{- end -}}
{{- end -}}
