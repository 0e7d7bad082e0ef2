{{/* The release's full name, at most 63 characters. */}}
{{- define "kith.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "kith.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kith.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kith
{{- end -}}

{{/* Labels that select the operator's pods (never change them: a
Deployment's selector is immutable). */}}
{{- define "kith.selectorLabels" -}}
app.kubernetes.io/name: kith-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kith.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kith.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kith.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The rules the operator needs wherever it reconciles pipelines: exactly
the verbs it uses, plus those it grants runners in their Roles (a subject
can grant only what it holds). */}}
{{- define "kith.operatorRules" -}}
# Its own resources: reconcile pipelines (finalizer patches), write status,
# request snapshots and fail those a deleted pipeline leaves pending.
- apiGroups: [kith.dev]
  resources: [profilepipelines]
  verbs: [get, list, watch, patch, update]
- apiGroups: [kith.dev]
  resources: [profilepipelines/status]
  verbs: [get, patch, update]
- apiGroups: [kith.dev]
  resources: [profilesnapshots]
  verbs: [get, list, watch, create, delete, patch]
- apiGroups: [kith.dev]
  resources: [profilesnapshots/status]
  verbs: [get, patch, update]
# The runner objects it builds, applies and deletes.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [configmaps, services, serviceaccounts]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, update, delete]
# Runners take ingress on their admin port only.
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, update, delete]
# The Job that deletes a suspended pipeline's pruned snapshot files with the
# runners' credentials (the operator has none).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
# Read only: an autoscaler that targets a runner Deployment with more than
# one replica is refused (Degraded ParallelismUnsupported).
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# The Lease permission runners' Roles grant.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, watch, create, update, patch]
{{- end -}}
